#!/bin/sh
# The DICOM validation tests run every object Corridor writes through Debian's dicom3tools (dciodvfy, the
# IOD and module checker) and dcmtk (dsrdump reads structured reports, dcmdump dumps any object), and render
# the procedure report's PDF with poppler-utils (pdftoppm) when present. Installs them when missing and we
# may (root or sudo, apt-get present); idempotent. npm test runs this and, when it fails, the validation
# tests skip naming the missing tool.
set -e
missing=""
command -v dciodvfy >/dev/null 2>&1 || missing="$missing dicom3tools"
{ command -v dsrdump && command -v dcmdump; } >/dev/null 2>&1 || missing="$missing dcmtk"
command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
if [ -z "$missing" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure-dicom-tools: missing$missing and this user is not root; install with: sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-dicom-tools: missing$missing and apt-get is not available; install dciodvfy (dicom3tools), dsrdump and dcmdump (dcmtk) and put them on PATH" >&2
  exit 1
fi
echo "ensure-dicom-tools: installing Debian's$missing (for the DICOM validation tests)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
for tool in dciodvfy dsrdump dcmdump; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "ensure-dicom-tools: apt-get finished but $tool is still missing" >&2
    exit 1
  fi
done
