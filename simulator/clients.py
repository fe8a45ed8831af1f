"""The simulated fleet sending through the robot client (fleet_robot), as real robots would: each robot records
into its own SQLite outbox and sends over MQTT or HTTP; a reading leaves the outbox only after the service's ack."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet_robot import HttpTransport, MqttTransport, RobotClient, Transport
from simulator.delivery import Stats


class ClientFleet:
    def __init__(self, transport: str, api_url: str, mqtt_url: str, outbox_dir: Path, tokens: dict[str, str]) -> None:
        outbox_dir.mkdir(parents=True, exist_ok=True)
        self.clients: dict[str, RobotClient] = {}
        self.recorded: dict[str, list[tuple[int, datetime]]] = {}  # robot -> (outbox number, timestamp) it recorded
        for robot_id, token in tokens.items():
            sender: Transport = (
                MqttTransport.from_url(mqtt_url, robot_id, token)
                if transport == "mqtt"
                else HttpTransport(api_url, token)
            )
            outbox = outbox_dir / f"{robot_id.replace('/', '_')}.db"
            self.clients[robot_id] = RobotClient(robot_id, sender, outbox).start()

    def record(self, readings: Sequence[dict[str, Any]]) -> None:
        """One tick's readings, each into its robot's outbox (blocking: each is on disk when this returns)."""
        for reading in readings:
            robot_id = str(reading["robot_id"])
            seq = self.clients[robot_id].record(reading)
            self.recorded.setdefault(robot_id, []).append((seq, datetime.fromisoformat(str(reading["timestamp"]))))

    def drain(self, timeout_s: float) -> bool:
        """Wait for every outbox to empty; whether they all did."""
        return all(client.wait_sent(timeout_s) for client in self.clients.values())

    def fill(self, stats: Stats) -> None:
        """The clients' counts, as the simulator's: a reading still in an outbox is unacknowledged, never dropped."""
        totals = [client.stats for client in self.clients.values()]
        stats.sent = sum(t.recorded for t in totals)
        stats.acknowledged = sum(t.accepted + t.duplicates for t in totals)
        stats.duplicates = sum(t.duplicates for t in totals)
        stats.retried = sum(t.retries for t in totals)
        stats.rejected = sum(t.refused for t in totals)

    def acknowledged(self) -> dict[str, set[datetime]]:
        """Each robot's acknowledged readings: what it recorded, less what its outbox still holds or set aside."""
        found: dict[str, set[datetime]] = {}
        for robot_id, client in self.clients.items():
            held = {seq for seq, _ in client.outbox.peek(client.outbox.produced)}
            held |= {seq for seq, _, _ in client.outbox.dead()}
            found[robot_id] = {at for seq, at in self.recorded.get(robot_id, []) if seq not in held}
        return found

    def close(self) -> int:
        """Stop the clients; how many readings their outboxes still hold (sent by the next run on them)."""
        pending = sum(client.outbox.pending() for client in self.clients.values())
        for client in self.clients.values():
            client.close()
        return pending
