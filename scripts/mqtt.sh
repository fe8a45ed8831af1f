#!/usr/bin/env bash
# Debian's Mosquitto for robots over MQTT: install|start|stop|kill9|status|env. Its config, accounts, pid, log and
# persistence live in .mqtt/ (FLEET_MQTT_DIR, mode 700); the service's broker password in service.secret there.
# The password and ACL files are written by the service from the robots' tokens (app/mqtt/accounts.py).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${FLEET_MQTT_DIR:-$ROOT/.mqtt}
PORT=${FLEET_MQTT_PORT:-1883}
BIND=${FLEET_MQTT_BIND:-127.0.0.1}
PIDFILE=$DIR/mosquitto.pid

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

install() {
    command -v mosquitto >/dev/null 2>&1 && return 0
    echo "mqtt: installing Debian's mosquitto" >&2
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mosquitto >/dev/null
    # The package's own broker is not wanted: this script starts one with the service's accounts.
    as_root systemctl disable --now mosquitto >/dev/null 2>&1 || true
}

service_env() {
    echo "export FLEET_MQTT_URL=mqtt://127.0.0.1:$PORT FLEET_MQTT_SECRET_FILE=$DIR/service.secret FLEET_MQTT_ACCOUNTS_DIR=$DIR"
}

case ${1:-start} in
    install) install ;;
    start)
        install
        if running; then echo "mqtt: already running (pid $(cat "$PIDFILE")) on mqtt://$BIND:$PORT"; exit 0; fi
        mkdir -p "$DIR/data" && chmod 700 "$DIR"
        if [ ! -s "$DIR/service.secret" ]; then
            (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$DIR/service.secret")
        fi
        cat >"$DIR/mosquitto.conf" <<CONF
# Written by scripts/mqtt.sh; edit that instead.
per_listener_settings false
allow_anonymous false
listener $PORT $BIND
password_file $DIR/passwords
acl_file $DIR/acl
pid_file $PIDFILE
user $(id -un)
persistence true
persistence_location $DIR/data/
log_dest file $DIR/mosquitto.log
log_type error
log_type warning
log_type notice
# QoS 1 messages in flight to one 3.1.1 client (a robot's acks); MQTT 5 clients set their own receive maximum.
max_inflight_messages 100
max_queued_messages 100000
# A message as large as the service takes a POST body (FLEET_MAX_BODY_BYTES), with room for its header.
max_packet_size 8389632
CONF
        eval "$(service_env)"
        (cd "$ROOT" && .venv/bin/python -m app.cli.admin write-broker-accounts)
        mosquitto -c "$DIR/mosquitto.conf" -d
        for _ in $(seq 40); do
            if running && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
                echo "mqtt: mqtt://$BIND:$PORT (robots: user = robot id, password = its token; log: $DIR/mosquitto.log)"
                exit 0
            fi
            sleep 0.25
        done
        echo "mqtt: broker did not come up; last log lines:" >&2; tail -20 "$DIR/mosquitto.log" >&2 || true; exit 1
        ;;
    stop)
        if running; then
            kill "$(cat "$PIDFILE")"
            for _ in $(seq 40); do running || break; sleep 0.25; done
            echo "mqtt: stopped"
        else
            echo "mqtt: not running"
        fi
        ;;
    kill9)  # the fault suite's broker crash
        if running; then kill -9 "$(cat "$PIDFILE")"; for _ in $(seq 40); do running || break; sleep 0.1; done; fi
        ;;
    status) if running; then echo running; else echo stopped; exit 3; fi ;;
    env) service_env ;;
    *) echo "usage: $0 install|start|stop|kill9|status|env" >&2; exit 2 ;;
esac
