#!/bin/sh
# Installs Debian's plastimatch, when absent: for the DRR and C-arm CT benchmarks' comparisons (npm run bench)
# and the plastimatch fdk test (packages/node/src/recon/plastimatch.test.ts; npm test runs this script).
set -e
sh "$(dirname "$0")/apt-tool.sh" plastimatch plastimatch
