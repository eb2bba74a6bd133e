#!/bin/sh
# The browser end-to-end tests drive Debian's Chromium (/usr/bin/chromium) through playwright-core, which
# downloads no browser of its own. Install it when it is missing and we may (root, apt-get present).
set -e
CHROMIUM="${CORRIDOR_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: $CHROMIUM is missing and this user is not root; install it with: sudo apt-get install -y chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available; install Chromium and set CORRIDOR_CHROMIUM to its path" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium (for the browser end-to-end tests)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends chromium >&2
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2
  exit 1
fi
