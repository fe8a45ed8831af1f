#!/usr/bin/env bash
# Project-local PostgreSQL + TimescaleDB cluster: install, start, stop, clean. Every step is idempotent.
# Usage: scripts/db.sh install|up|down|clean|status|url
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGDATA=${FLEET_PGDATA:-$ROOT/.pgdata}
PORT=${FLEET_DB_PORT:-55432}
LOG=$PGDATA.log
DEBIAN_MAJOR=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
# Debian 13 ("trixie", and testing/sid which report a codename) ships TimescaleDB for PostgreSQL 17.
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

extension_installed() {
    [ -x "$PGBIN/postgres" ] && [ -f "$("$PGBIN/pg_config" --sharedir 2>/dev/null || echo /nonexistent)/extension/timescaledb.control" ]
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# Debian 12 has no TimescaleDB package: build trixie's source package against the installed server, as its
# debian/rules does, using a private apt state so the system's sources stay untouched.
build_from_trixie_source() {
    local work; work=$(mktemp -d)
    say "building TimescaleDB from Debian 13's source package in $work"
    as_root apt-get update -q >/dev/null
    apt_install "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" cmake dpkg-dev build-essential libssl-dev
    mkdir -p "$work/lists/partial" "$work/sources.list.d"
    cat >"$work/sources.list.d/trixie-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # APT::Sandbox::User=root: the private dirs live in a 0700 mktemp dir that _apt cannot enter.
    local apt_opts=(-o "Dir::State::Lists=$work/lists" -o "Dir::Etc::SourceParts=$work/sources.list.d"
        -o "Dir::Etc::SourceList=/dev/null" -o "APT::Sandbox::User=root")
    as_root apt-get "${apt_opts[@]}" update -q >/dev/null
    (cd "$work" && as_root apt-get "${apt_opts[@]}" source -q timescaledb >/dev/null)
    local src; src=$(find "$work" -maxdepth 1 -type d -name 'timescaledb-*' | head -1)
    if ! (
        cd "$src"
        cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
            -DAPACHE_ONLY=1 -DUSE_TELEMETRY=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PGBIN/pg_config"
        make -C build -j"$(nproc)"
        as_root make -C build install
    ) >"$work/build.log" 2>&1; then
        tail -40 "$work/build.log" >&2; say "TimescaleDB build failed"; exit 1
    fi
    as_root rm -rf "$work"
}

cmd_install() {
    if extension_installed; then return; fi
    if [ ! -f /etc/debian_version ]; then
        say "not a Debian-family host: install PostgreSQL $PG_MAJOR and TimescaleDB yourself, or use MODE=docker"
        exit 1
    fi
    if [ "$PG_MAJOR" -ge 17 ]; then
        say "installing postgresql-$PG_MAJOR-timescaledb from the Debian archive"
        as_root apt-get update -q >/dev/null
        apt_install "postgresql-$PG_MAJOR" "postgresql-$PG_MAJOR-timescaledb"
    else
        build_from_trixie_source
    fi
    extension_installed || { say "TimescaleDB is still missing after install"; exit 1; }
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
    if running; then say "already running on port $PORT"; else
        touch "$LOG"; [ "$(id -u)" -eq 0 ] && chown postgres: "$LOG"
        as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >/dev/null
        say "started PostgreSQL $PG_MAJOR + TimescaleDB on 127.0.0.1:$PORT (log: $LOG)"
    fi
    for _ in $(seq 60); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && return 0
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

# Faults, for tests/integration/faults: what a crash, an OOM kill or a hung host does to the database.
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
