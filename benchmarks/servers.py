"""The processes a benchmark drives: the API under uvicorn and the InfluxDB peer, each started and stopped here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], ok: tuple[int, ...] = (200, 204)) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status in ok:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the API drains its buffer on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def api_server(database_url: str, workers: int, extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """Run ``python -m app``; yields (port, pid)."""
    settings = {"FLEET_WORKERS": str(workers), "FLEET_LOG_LEVEL": "warning", "FLEET_MIGRATE_ON_START": "false"}
    with _app_process(database_url, settings | (extra_env or {})) as served:
        yield served


@contextmanager
def deployed_api_server(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """Run ``python -m app`` as ``make up`` does (scripts/api.sh): the settings at their defaults (workers,
    limits, logging) unless the shell sets them (or ``extra_env``: a broker's, as `make up` adds), the log, access
    lines included, written to a file; yields (port, pid)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as root,
        open(Path(root) / "api.log", "wb") as log,
        _app_process(database_url, extra_env or {}, log) as served,
    ):
        yield served


MQTT_SCRIPT = ROOT / "scripts" / "mqtt.sh"


class MqttBroker:
    """Mosquitto started by scripts/mqtt.sh as `make up` starts it, on a free port and in a directory of its own,
    its accounts written from ``database_url``'s robots; and the settings that point an API process at it."""

    def __init__(self, directory: Path, database_url: str, accounts_poll_ms: int = 1000) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._poll_ms = accounts_poll_ms
        self._env = {
            **os.environ,
            "FLEET_MQTT_DIR": str(directory),
            "FLEET_MQTT_PORT": str(self.port),
            "FLEET_DATABASE_URL": database_url,
        }

    def _script(self, command: str) -> None:
        subprocess.run(["bash", str(MQTT_SCRIPT), command], env=self._env, check=True, capture_output=True)

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def kill(self) -> None:
        """kill -9: what it acknowledged but had not yet delivered is gone (Mosquitto 2.0.11)."""
        self._script("kill9")

    def pid(self) -> int:
        return int((self.directory / "mosquitto.pid").read_text())

    def service_settings(self) -> dict[str, str]:
        """The API process's FLEET_* settings for this broker, as `make up` sets them."""
        return {
            "FLEET_MQTT_URL": self.url,
            "FLEET_MQTT_SECRET_FILE": str(self.directory / "service.secret"),
            "FLEET_MQTT_ACCOUNTS_DIR": str(self.directory),
            "FLEET_MQTT_ACCOUNTS_POLL_MS": str(self._poll_ms),
        }

    def log(self) -> str:
        try:
            return (self.directory / "mosquitto.log").read_text()
        except FileNotFoundError:
            return ""


@contextmanager
def mqtt_broker(database_url: str) -> Iterator[MqttBroker]:
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as root:
        broker = MqttBroker(Path(root) / "mqtt", database_url)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@contextmanager
def _app_process(
    database_url: str, settings: dict[str, str], log: IO[bytes] | None = None
) -> Iterator[tuple[int, int]]:
    """``python -m app`` on a free loopback port with these settings over the shell's, stopped on exit; its output
    to ``log`` (default: this process's); yields (port, pid) once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "FLEET_DATABASE_URL": database_url,
        "FLEET_HOST": "127.0.0.1",
        "FLEET_PORT": str(port),
        **settings,
    }
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", process)
        yield port, process.pid
    finally:
        _stop(process)


INFLUX_CONFIG = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
{data_extra}[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def influxd_missing_reason() -> str | None:
    if shutil.which("influxd") is None:
        return "influxd is not installed (Debian package 'influxdb')"
    return None


@contextmanager
def influx_server(data_extra: str = "") -> Iterator[tuple[int, int, Path]]:
    """InfluxDB 1.x on loopback in a temporary directory, removed afterwards; yields (http port, pid, that
    directory). ``data_extra``: more settings of its [data] section, one per line."""
    with tempfile.TemporaryDirectory(prefix="bench-influx-") as root:
        http_port, rpc_port = free_port(), free_port()
        config = Path(root) / "influxdb.conf"
        config.write_text(
            INFLUX_CONFIG.format(root=root, http_port=http_port, rpc_port=rpc_port, data_extra=data_extra)
        )
        process = subprocess.Popen(
            ["influxd", "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_http(f"http://127.0.0.1:{http_port}/ping", process)
            yield http_port, process.pid, Path(root)
        finally:
            _stop(process)


def influx_query(port: int, query: str, database: str | None = None) -> dict[str, object]:
    params = {"q": query} | ({"db": database} if database else {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/query", data=urllib.parse.urlencode(params).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        result: dict[str, object] = json.loads(response.read())
        return result
