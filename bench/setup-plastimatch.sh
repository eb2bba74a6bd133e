#!/bin/sh
# Installs Debian's plastimatch for the DRR benchmark's comparison (npm run bench -- drr), when absent.
set -e
if command -v plastimatch >/dev/null 2>&1; then
  echo "plastimatch present: $(command -v plastimatch)"
  exit 0
fi
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
$SUDO apt-get update
apt-cache policy plastimatch
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends plastimatch
command -v plastimatch
