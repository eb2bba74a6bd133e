#!/bin/sh
# The PACS tests and the `pacs` benchmark talk DICOMweb to Debian's Orthanc with its DICOMweb plugin
# (packages `orthanc` and `orthanc-dicomweb`). Install them when missing and we may (root or sudo, apt-get
# present). Nothing is started here: each test starts its own Orthanc on a free loopback port with a
# throw-away storage folder (packages/node/src/test-helpers/orthanc.ts) and stops it after. Quiet when
# everything is present; exits nonzero with the reason when it cannot install.
set -e
ORTHANC="${CORRIDOR_ORTHANC:-Orthanc}"
have_orthanc() {
  command -v "$ORTHANC" >/dev/null 2>&1
}
have_plugin() {
  # The plugin's shared library, wherever the package puts it (dpkg -L orthanc-dicomweb).
  if [ -n "$CORRIDOR_ORTHANC_DICOMWEB" ]; then
    [ -f "$CORRIDOR_ORTHANC_DICOMWEB" ]
    return
  fi
  command -v dpkg >/dev/null 2>&1 && dpkg -L orthanc-dicomweb 2>/dev/null | grep -q 'libOrthancDicomWeb\.so'
}
if have_orthanc && have_plugin; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-orthanc: Orthanc or its DICOMweb plugin is missing and apt-get is not available; install them and set CORRIDOR_ORTHANC (the Orthanc binary) and CORRIDOR_ORTHANC_DICOMWEB (libOrthancDicomWeb.so)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure-orthanc: Orthanc or its DICOMweb plugin is missing and this user is not root; install them with: sudo apt-get install -y orthanc orthanc-dicomweb" >&2
    exit 1
  fi
fi
echo "ensure-orthanc: installing Debian's orthanc and orthanc-dicomweb (for the PACS tests)" >&2
# -q twice and output to a log: a test run should not scroll apt's progress; the log is shown on failure.
LOG="$(mktemp)"
if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb; } >"$LOG" 2>&1; then
  cat "$LOG" >&2
  rm -f "$LOG"
  echo "ensure-orthanc: apt-get could not install orthanc orthanc-dicomweb" >&2
  exit 1
fi
rm -f "$LOG"
if ! have_orthanc || ! have_plugin; then
  echo "ensure-orthanc: apt-get finished but Orthanc ($ORTHANC) or libOrthancDicomWeb.so is still missing" >&2
  exit 1
fi
