#!/usr/bin/env bash
# Installs headless Chromium for the HTML-report test, from Debian's packages, if it is missing.
# The test drives it through Playwright's Python package (pip) with this browser, so nothing
# is downloaded at test time. Without apt-get it says so; the test then skips (fails on CI).
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium yourself for the report test" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q chromium >/dev/null 2>&1 \
  || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; } \
  || { echo "install-chromium: apt-get could not install chromium" >&2; exit 1; }
echo "install-chromium: installed $(chromium --version 2>/dev/null)"
