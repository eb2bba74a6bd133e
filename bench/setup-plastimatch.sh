#!/bin/sh
# Installs Debian's plastimatch, when absent: for the DRR and C-arm CT benchmarks' comparisons (npm run bench)
# and the plastimatch fdk test (packages/node/src/recon/plastimatch.test.ts; npm test runs this script).
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
