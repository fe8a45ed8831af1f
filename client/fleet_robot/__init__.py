"""The robot's side of fleet telemetry: readings go to a durable outbox first, and leave it only when the service
has acknowledged them after its commit, over MQTT or HTTP."""

from fleet_robot.client import RobotClient, Stats
from fleet_robot.outbox import Outbox
from fleet_robot.transports import Acked, HttpTransport, MqttTransport, Refused, Retry, Transport

__all__ = [
    "Acked",
    "HttpTransport",
    "MqttTransport",
    "Outbox",
    "Refused",
    "Retry",
    "RobotClient",
    "Stats",
    "Transport",
]
