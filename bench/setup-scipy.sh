#!/bin/sh
# Installs SciPy (Debian's python3-scipy) for the distance-transform benchmark when it is absent.
set -e
# Debian's own interpreter: another python3 first on PATH (pyenv) would not see python3-scipy.
if /usr/bin/python3 -c 'import scipy.ndimage' 2>/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq python3-scipy
