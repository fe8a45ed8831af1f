#!/usr/bin/env bash
# Install what the project needs and is missing: uv, then the locked Python dependencies into .venv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.local/bin:$PATH"

if ! command -v uv >/dev/null 2>&1; then
    echo "bootstrap: installing uv from PyPI" >&2
    python3 -m pip install --quiet --user uv 2>/dev/null \
        || python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
        || python3 -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$HOME/.local/bin/uv")
# PyICU (Unicode's own look-alike checks for robot ids) is built against the system's ICU: its headers and a
# C++ compiler, from Debian.
if ! pkg-config --exists icu-i18n 2>/dev/null || ! command -v g++ >/dev/null 2>&1; then
    echo "bootstrap: installing ICU's headers, pkg-config and g++ from Debian (to build PyICU)" >&2
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libicu-dev pkg-config g++ >/dev/null
fi
cd "$ROOT"
# The interpreter on the machine is used as is: nothing is downloaded outside the package registries.
UV_PYTHON_DOWNLOADS=never "$UV" sync --quiet --locked

# Browser assets the API serves itself (Swagger UI for /docs, Leaflet, its marker clustering and uPlot for
# /console), pinned in package-lock.json: no CDN at run time.
if [ ! -f node_modules/swagger-ui-dist/swagger-ui-bundle.js ] || [ ! -f node_modules/leaflet/dist/leaflet.js ] \
    || [ ! -f node_modules/uplot/dist/uPlot.esm.js ] \
    || [ ! -f node_modules/leaflet.markercluster/dist/leaflet.markercluster.js ]; then
    echo "bootstrap: installing the pinned browser assets with npm" >&2
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
fi
