#!/usr/bin/env bash
# `make fuzz`: schemathesis --checks all against a real API on a scratch database, with an admin key.
# schemathesis needs Python 3.12+ (it crashes in hypothesis on 3.11), so it gets a venv of its own in .fuzz-venv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCHEMATHESIS_VERSION=4.32.5
PORT=${FLEET_FUZZ_PORT:-8765}
DB_URL=postgresql://postgres@127.0.0.1:${FLEET_DB_PORT:-55432}/fleet_fuzz

PY312=
for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[23]*/bin/python; do
    if "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then PY312=$candidate; break; fi
done
if [ -z "$PY312" ]; then echo "fuzz: no Python 3.12+ found (schemathesis needs it)" >&2; exit 2; fi
if [ ! -x .fuzz-venv/bin/schemathesis ]; then
    UV_PYTHON_DOWNLOADS=never python3 -m uv venv -q -p "$PY312" .fuzz-venv
    UV_PYTHON_DOWNLOADS=never python3 -m uv pip install -q -p .fuzz-venv/bin/python "schemathesis==$SCHEMATHESIS_VERSION"
fi
# The hooks import the server's own robot-id and geofence checks, so the fuzzer's venv gets their libraries at the
# versions the app runs (from its lock).
versions=$(.venv/bin/python -c 'import importlib.metadata as m; print(*(f"{p}=={m.version(p)}" for p in ("msgspec", "shapely")))')
# shellcheck disable=SC2086 - one argument per requirement
UV_PYTHON_DOWNLOADS=never python3 -m uv pip install -q -p .fuzz-venv/bin/python $versions

export FLEET_DATABASE_URL=$DB_URL FLEET_PORT=$PORT FLEET_LOG_LEVEL=warning
.venv/bin/python -m app.cli.migrate --create-database >/dev/null
KEY=$(.venv/bin/python -m app.cli.admin create-key fuzz --scope admin --scope read --scope stream --scope export \
    --scope ingest --scope operate | grep -o 'flt_k_[A-Za-z0-9_-]*' | head -1)
.venv/bin/python -m app >.fuzz-api.log 2>&1 &
API=$!
trap 'kill $API 2>/dev/null || true' EXIT
for _ in $(seq 40); do curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.5; done
# The stream never ends, and revoking credentials would revoke the fuzzer's own key mid-run.
PYTHONPATH=scripts SCHEMATHESIS_HOOKS=fuzz_hooks .fuzz-venv/bin/schemathesis run "http://127.0.0.1:$PORT/docs/openapi.json" --checks all -n "${FUZZ_EXAMPLES:-25}" \
    --request-timeout 10 -H "Authorization: Bearer $KEY" \
    --exclude-path /telemetry/stream --exclude-operation-id revokeCredential "$@"
