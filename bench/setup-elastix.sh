#!/bin/sh
# Installs Debian's elastix, when absent: for the register benchmark, which runs elastix beside Corridor on the
# same pairs (packages/node/src/bench/register.ts; npm run bench runs this).
set -e
sh "$(dirname "$0")/apt-tool.sh" elastix elastix
