#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; a Playwright browser download cannot work here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
echo "browser: installing Debian's chromium" >&2
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -q >/dev/null
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
