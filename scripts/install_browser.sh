#!/bin/sh
# Headless Chromium for the site test (tests/scale/test_site.py), from Debian's packages.
# Playwright (a pip package in the `test` extra) drives this binary; `playwright install` is never run.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium
