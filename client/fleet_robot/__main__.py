"""``python -m fleet_robot``: record readings for one robot into its outbox and send them, over MQTT or HTTP,
until the outbox is empty; what a robot would do, and what the tests kill mid-batch."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from fleet_robot.client import RobotClient
from fleet_robot.transports import HttpTransport, MqttTransport, Transport


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleet_robot", description=__doc__)
    parser.add_argument("--robot-id", required=True)
    parser.add_argument("--token-file", required=True, type=Path, help="a file holding the robot's token")
    parser.add_argument("--outbox", required=True, type=Path, help="the outbox's SQLite file (created if missing)")
    parser.add_argument("--url", required=True, help="http(s)://api-host:port or mqtt://broker-host:port")
    parser.add_argument("--count", type=int, default=100, help="readings to record (0: only send the outbox)")
    parser.add_argument("--rate", type=float, default=0.0, help="readings per second (0: as fast as possible)")
    parser.add_argument("--batch", type=int, default=100, help="readings per message or POST, at most")
    parser.add_argument("--ack-timeout", type=float, default=10.0, help="MQTT: seconds to wait for an ack, then resend")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for the outbox to empty")
    return parser


def transport_for(url: str, robot_id: str, token: str, ack_timeout_s: float = 10.0) -> Transport:
    if url.startswith("mqtt://"):
        return MqttTransport.from_url(url, robot_id, token, ack_timeout_s=ack_timeout_s)
    return HttpTransport(url, token)


def main() -> None:
    args = _parser().parse_args()
    token = args.token_file.read_text().strip()
    client = RobotClient(
        args.robot_id, transport_for(args.url, args.robot_id, token), args.outbox, max_batch=args.batch
    )
    client.start()
    started = time.monotonic()
    for index in range(args.count):
        if args.rate:
            time.sleep(max(0.0, started + index / args.rate - time.monotonic()))
        angle = index / 100
        client.record(
            {
                "battery_level": round(1 - (index % 1000) / 1000, 3),
                "location": {"latitude": 37.0 + 0.001 * math.sin(angle), "longitude": -122.0 + 0.001 * math.cos(angle)},
            }
        )
    drained = client.wait_sent(args.drain_timeout)
    stats = client.stats
    summary = {
        "produced": client.outbox.produced,
        "pending": client.outbox.pending(),
        "refused": len(client.outbox.dead()),
        "accepted": stats.accepted,
        "duplicates": stats.duplicates,
        "retries": stats.retries,
    }
    client.close()
    print(json.dumps(summary))
    sys.exit(0 if drained else 1)


if __name__ == "__main__":
    main()
