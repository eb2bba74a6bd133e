#!/bin/sh
# sh bench/apt-tool.sh COMMAND PACKAGE: installs Debian's PACKAGE when COMMAND is not on PATH (idempotent; root
# or sudo). The benchmarks' reference tools (setup-plastimatch.sh, setup-elastix.sh) go through here.
set -e
tool="$1"
package="$2"
if command -v "$tool" >/dev/null 2>&1; then
  echo "$tool present: $(command -v "$tool")"
  exit 0
fi
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
$SUDO apt-get update
apt-cache policy "$package"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package"
command -v "$tool"
