#!/bin/sh
# The real components the tests run against, installed from Debian when missing (each script is idempotent).
# Chromium is required (the browser tests); the others are soft: a tool that cannot be installed makes its
# tests skip, each naming the missing tool (under CI=true the PACS tests fail instead of skipping).
set -e
here=$(dirname "$0")
sh "$here/ensure-chromium.sh"
sh "$here/../bench/setup-plastimatch.sh" >&2 ||
  echo 'test: plastimatch could not be installed; the plastimatch fdk comparison will skip' >&2
sh "$here/../bench/setup-elastix.sh" >&2 ||
  echo 'test: elastix could not be installed; the elastix bridge test (bench/elastix.test.ts) will skip' >&2
sh "$here/ensure-dicom-tools.sh" ||
  echo 'test: dicom3tools/dcmtk could not be installed; the DICOM validation tests will skip, naming the tool' >&2
sh "$here/ensure-orthanc.sh" || echo 'test: Orthanc could not be installed; the PACS tests will skip' >&2
