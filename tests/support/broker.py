"""A real Mosquitto for the MQTT tests, started by scripts/mqtt.sh as `make up` starts it, on a free port and in a
directory of its own; and the settings that point an API process at it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from benchmarks.servers import ROOT, free_port

MQTT_SCRIPT = ROOT / "scripts" / "mqtt.sh"
ACCOUNTS_POLL_MS = 200  # revocations reach the broker within this in tests (1 s by default)


class Broker:
    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
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

    def service_settings(self) -> dict[str, str]:
        """The API process's FLEET_* settings for this broker, as `make up` sets them."""
        return {
            "FLEET_MQTT_URL": self.url,
            "FLEET_MQTT_SECRET_FILE": str(self.directory / "service.secret"),
            "FLEET_MQTT_ACCOUNTS_DIR": str(self.directory),
            "FLEET_MQTT_ACCOUNTS_POLL_MS": str(ACCOUNTS_POLL_MS),
        }

    def log(self) -> str:
        try:
            return (self.directory / "mosquitto.log").read_text()
        except FileNotFoundError:
            return ""
