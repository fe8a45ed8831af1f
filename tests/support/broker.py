"""A real Mosquitto for the MQTT tests: the benchmark's (scripts/mqtt.sh on a free port), with revocations reaching
it within a fifth of a second."""

from __future__ import annotations

from pathlib import Path

from benchmarks.servers import MqttBroker

ACCOUNTS_POLL_MS = 200  # revocations reach the broker within this in tests (1 s by default)


class Broker(MqttBroker):
    def __init__(self, directory: Path, database_url: str) -> None:
        super().__init__(directory, database_url, ACCOUNTS_POLL_MS)
