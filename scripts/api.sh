#!/usr/bin/env bash
# Run the API in the background for `make up` / `make down`: start|stop|status. Logs go to .run/api.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/.run
PIDFILE=$RUN/api.pid
HOST=${FLEET_HOST:-127.0.0.1}
PORT=${FLEET_PORT:-8000}
mkdir -p "$RUN"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case ${1:-start} in
    start)
        if running; then echo "api: already running (pid $(cat "$PIDFILE")) on http://$HOST:$PORT"; exit 0; fi
        cd "$ROOT"
        # Robots over MQTT: the broker `make up` started (scripts/mqtt.sh), unless FLEET_MQTT_URL names another.
        if [ -z "${FLEET_MQTT_URL:-}" ] && bash scripts/mqtt.sh status >/dev/null 2>&1; then
            eval "$(bash scripts/mqtt.sh env)"
        fi
        FLEET_HOST=$HOST FLEET_PORT=$PORT nohup .venv/bin/python -m app >"$RUN/api.log" 2>&1 &
        echo $! >"$PIDFILE"
        for _ in $(seq 60); do
            if curl -fsS "http://$HOST:$PORT/" >/dev/null 2>&1; then
                echo "api: http://$HOST:$PORT  (console: http://$HOST:$PORT/console, Swagger UI: http://$HOST:$PORT/docs, log: $RUN/api.log)"
                if [ -n "${FLEET_MQTT_URL:-}" ]; then echo "api: takes robots' readings from $FLEET_MQTT_URL too"; fi
                exit 0
            fi
            running || break
            sleep 0.5
        done
        echo "api: did not come up; last log lines:" >&2; tail -20 "$RUN/api.log" >&2; exit 1
        ;;
    stop)
        if running; then
            # SIGTERM: uvicorn runs the lifespan shutdown, which drains the ingest buffer before exiting.
            kill "$(cat "$PIDFILE")"
            for _ in $(seq 60); do running || break; sleep 0.5; done
            echo "api: stopped"
        else
            echo "api: not running"
        fi
        rm -f "$PIDFILE"
        ;;
    status) if running; then echo running; else echo stopped; exit 3; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
