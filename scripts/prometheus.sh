#!/usr/bin/env bash
# Debian's Prometheus (and promtool), for the test that scrapes the API as a real Prometheus would.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then exit 0; fi
echo "prometheus: installing Debian's prometheus" >&2
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -q >/dev/null
# The package's service is not wanted: the test starts its own Prometheus on loopback.
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
