#!/usr/bin/env bash
# Project-local PostgreSQL + TimescaleDB cluster: install, start, stop, clean. Every step is idempotent.
# Usage: scripts/db.sh install|up|down|clean|status|url
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGDATA=${FLEET_PGDATA:-$ROOT/.pgdata}
PORT=${FLEET_DB_PORT:-55432}
LOG=$PGDATA.log
DEBIAN_MAJOR=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
# Debian 13 ("trixie", and testing/sid which report a codename) ships PostgreSQL 17; Debian 12 ships 15.
case $DEBIAN_MAJOR in 12|11|0) PG_MAJOR=${FLEET_PG_MAJOR:-15} ;; *) PG_MAJOR=${FLEET_PG_MAJOR:-17} ;; esac
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin

say() { printf 'db: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root for: $*"; exit 1
    fi
}

# postgres refuses to run as root, so root runs the cluster as the postgres user; anyone else runs it as themselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# TimescaleDB's community edition (with tsl/: columnstore, continuous aggregates, the job scheduler), built from
# a source tarball: FLEET_TIMESCALEDB_SOURCE is a URL or a path (CI and local mirrors point it at a copy), checked
# against FLEET_TIMESCALEDB_SHA256. Debian's own packages are the Apache edition, which has none of those.
TS_VERSION=2.28.3
TS_SOURCE=${FLEET_TIMESCALEDB_SOURCE:-https://github.com/timescale/timescaledb/archive/refs/tags/$TS_VERSION.tar.gz}
TS_SHA256=${FLEET_TIMESCALEDB_SHA256:-ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb}
# Fixes applied to that source before building (each file says what and why); a build made without these same
# patches is rebuilt, so that a machine built before a fix gets it.
TS_PATCHES=$ROOT/scripts/timescaledb
patches_sum() { cat "$TS_PATCHES"/*.patch | sha256sum | cut -d' ' -f1; }

extension_installed() {
    [ -x "$PGBIN/postgres" ] || return 1
    local share lib
    share=$("$PGBIN/pg_config" --sharedir 2>/dev/null) && lib=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null) || return 1
    [ -f "$share/extension/timescaledb--$TS_VERSION.sql" ] && [ -f "$lib/timescaledb-tsl-$TS_VERSION.so" ] &&
        [ "$(cat "$share/extension/timescaledb--$TS_VERSION.patches" 2>/dev/null)" = "$(patches_sum)" ]
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

fetch_source() {  # $1: where to put the tarball
    case $TS_SOURCE in
        http://*|https://*) say "downloading $TS_SOURCE"; curl -fsSL --retry 3 -o "$1" "$TS_SOURCE" ;;
        *) cp "$TS_SOURCE" "$1" ;;
    esac
    local sum; sum=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$sum" != "$TS_SHA256" ]; then
        say "$TS_SOURCE has sha256 $sum, not $TS_SHA256 (FLEET_TIMESCALEDB_SHA256)"; exit 1
    fi
}

build_community_edition() {
    local work; work=$(mktemp -d)
    say "building TimescaleDB $TS_VERSION (community edition) for PostgreSQL $PG_MAJOR in $work"
    as_root apt-get update -q >/dev/null
    apt_install "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" cmake build-essential libssl-dev curl ca-certificates patch
    fetch_source "$work/src.tar.gz"
    tar -xzf "$work/src.tar.gz" -C "$work"
    local src; src=$(find "$work" -maxdepth 1 -type d -name 'timescaledb-*' | head -1)
    if ! (
        cd "$src"
        for patch in "$TS_PATCHES"/*.patch; do patch -p1 <"$patch"; done
        cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
            -DUSE_TELEMETRY=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PGBIN/pg_config"
        make -C build -j"$(nproc)"
        as_root make -C build install
        patches_sum | as_root tee "$("$PGBIN/pg_config" --sharedir)/extension/timescaledb--$TS_VERSION.patches"
    ) >"$work/build.log" 2>&1; then
        tail -40 "$work/build.log" >&2; say "TimescaleDB build failed"; exit 1
    fi
    as_root rm -rf "$work"
}

cmd_install() {
    if extension_installed; then return; fi
    if [ ! -f /etc/debian_version ]; then
        say "not a Debian-family host: install PostgreSQL $PG_MAJOR and TimescaleDB $TS_VERSION yourself, or use MODE=docker"
        exit 1
    fi
    build_community_edition
    extension_installed || { say "TimescaleDB $TS_VERSION is still missing after install"; exit 1; }
}

# A cluster made before (on the Apache build, or an older release) is upgraded in place: ALTER EXTENSION ...
# UPDATE in each database, as the first statement of a fresh session (-X: no psqlrc), then the community license
# (set before the update, every session in an old database would fail: its release has no tsl/ module to load).
upgrade_in_place() {
    local db version
    for db in $("$PGBIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atc \
        "SELECT datname FROM pg_database WHERE datallowconn AND datname <> 'template0'"); do
        version=$("$PGBIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" -Atc \
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        if [ -n "$version" ] && [ "$version" != "$TS_VERSION" ]; then
            say "upgrading TimescaleDB $version to $TS_VERSION in database $db"
            "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" \
                -c "ALTER EXTENSION timescaledb UPDATE TO '$TS_VERSION'"
        fi
    done
    local conf=$PGDATA/postgresql.conf
    if ! grep -q "^timescaledb.license" "$conf"; then
        echo "timescaledb.license = 'timescale'" | as_owner tee -a "$conf" >/dev/null
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" reload >/dev/null
    fi
}

# The postgres user must be able to traverse to a data dir inside the checkout (mktemp dirs are 0700).
grant_traverse() {
    [ "$(id -u)" -eq 0 ] || return 0
    local d=$ROOT
    while [ "$d" != / ]; do
        runuser -u postgres -- test -x "$d" || chmod o+x "$d"
        d=$(dirname "$d")
    done
}

running() { [ -f "$PGDATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

cmd_up() {
    cmd_install
    grant_traverse
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        say "initialising cluster in $PGDATA"
        mkdir -p "$PGDATA"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$PGDATA"
        chmod 700 "$PGDATA"
        as_owner "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
        # Tuned for ingest on a small machine; fsync and synchronous_commit stay on: an ack means durable.
        cat >>"$PGDATA/postgresql.conf" <<EOF
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.license = 'timescale'
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA'
max_connections = 200
shared_buffers = 2GB
work_mem = 32MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
checkpoint_timeout = 15min
wal_compression = on
wal_buffers = 64MB
effective_cache_size = 12GB
random_page_cost = 1.1
jit = off
EOF
    fi
    if ! grep -q "^timescaledb.max_background_workers" "$PGDATA/postgresql.conf"; then
        # The job scheduler takes one worker per database with TimescaleDB, and each running job one more: with
        # PostgreSQL's 8 a cluster holding the test and bench databases had none left to run a job.
        printf 'timescaledb.max_background_workers = 16\nmax_worker_processes = 24\n' |
            as_owner tee -a "$PGDATA/postgresql.conf" >/dev/null
        if running; then as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -o "-p $PORT" -w -t 60 restart >/dev/null; fi
    fi
    if running; then say "already running on port $PORT"; else
        touch "$LOG"; [ "$(id -u)" -eq 0 ] && chown postgres: "$LOG"
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >/dev/null
        say "started PostgreSQL $PG_MAJOR + TimescaleDB on 127.0.0.1:$PORT (log: $LOG)"
    fi
    for _ in $(seq 60); do
        if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then upgrade_in_place; return 0; fi
        sleep 0.5
    done
    say "cluster did not become ready; see $LOG"; exit 1
}

cmd_down() {
    if running; then as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; say "stopped"; else
        say "not running"
    fi
}

cmd_clean() { cmd_down; rm -rf "$PGDATA" "$LOG"; say "removed $PGDATA"; }

# Faults, for tests/system/faults: what a crash, an OOM kill or a hung host does to the database.
postmaster_pid() { head -1 "$PGDATA/postmaster.pid" 2>/dev/null; }
cluster_pids() { local pm; pm=$(postmaster_pid); [ -n "$pm" ] && echo "$pm" $(pgrep -P "$pm"); }
cmd_crash() { as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null; say "stopped (immediate)"; }
cmd_kill9() { local pids; pids=$(cluster_pids); [ -n "$pids" ] && kill -9 $pids; say "killed -9: $pids"; }
cmd_freeze() { local pids; pids=$(cluster_pids); [ -n "$pids" ] && kill -STOP $pids; say "frozen: $pids"; }
cmd_thaw() { local pids; pids=$(cluster_pids); [ -n "$pids" ] && kill -CONT $pids; say "thawed"; }

case ${1:-up} in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    clean) cmd_clean ;;
    crash) cmd_crash ;;
    kill9) cmd_kill9 ;;
    freeze) cmd_freeze ;;
    thaw) cmd_thaw ;;
    status) if running; then echo running; else echo stopped; exit 3; fi ;;
    url) echo "postgresql://postgres@127.0.0.1:$PORT/postgres" ;;
    *) say "usage: $0 install|up|down|clean|status|url|crash|kill9|freeze|thaw"; exit 2 ;;
esac
