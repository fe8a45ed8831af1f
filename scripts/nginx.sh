#!/usr/bin/env bash
# Debian's nginx, for the test of the TLS proxy in docs/deployment.md (deploy/nginx-tls.conf).
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
echo "nginx: installing Debian's nginx" >&2
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -q >/dev/null
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >/dev/null
# The package's own server (port 80) is not wanted: the test starts its own nginx on a free loopback port.
as_root systemctl disable --now nginx >/dev/null 2>&1 || as_root service nginx stop >/dev/null 2>&1 || true
