"""A ROS 2 node that sends a robot's battery and position to the fleet service through the robot client.

Not run by this repository's tests: ROS 2 (rclpy) cannot be installed on its machines. Run it on the robot:

    ros2 run <your_package> fleet_bridge --ros-args -p robot_id:=amr-07 -p token_file:=/etc/fleet/token \\
        -p outbox:=/var/lib/fleet/outbox.db -p url:=mqtt://broker.example:1883

Each BatteryState is recorded with the newest NavSatFix (the service wants a position or a pose with every
reading), at most ``rate_hz`` a second; one without a charge (NaN) is skipped, as the service needs one.
Recording only writes the outbox; the client sends in its own thread, so a slow network never blocks the executor,
and what is recorded survives a power cut.
"""

from __future__ import annotations

import math
from pathlib import Path

import rclpy  # type: ignore[import-not-found]
from rclpy.node import Node  # type: ignore[import-not-found]
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus  # type: ignore[import-not-found]

from fleet_robot import HttpTransport, MqttTransport, RobotClient, Transport


class FleetBridge(Node):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("fleet_bridge")
        robot_id = self.declare_parameter("robot_id", "").value or self.get_namespace().strip("/")
        token = Path(self.declare_parameter("token_file", "/etc/fleet/token").value).read_text().strip()
        url = self.declare_parameter("url", "mqtt://127.0.0.1:1883").value
        outbox = self.declare_parameter("outbox", "/var/lib/fleet/outbox.db").value
        self.min_interval_s = 1.0 / float(self.declare_parameter("rate_hz", 1.0).value)
        transport: Transport = (
            MqttTransport.from_url(url, robot_id, token) if url.startswith("mqtt://") else HttpTransport(url, token)
        )
        self.client = RobotClient(robot_id, transport, outbox).start()
        self.fix: NavSatFix | None = None
        self.last_sent_s = -math.inf
        self.create_subscription(NavSatFix, "fix", self.on_fix, 10)
        self.create_subscription(BatteryState, "battery_state", self.on_battery, 10)

    def on_fix(self, fix: NavSatFix) -> None:
        if fix.status.status != NavSatStatus.STATUS_NO_FIX:
            self.fix = fix

    def on_battery(self, battery: BatteryState) -> None:
        now_s = self.get_clock().now().nanoseconds / 1e9
        if self.fix is None or math.isnan(battery.percentage) or now_s - self.last_sent_s < self.min_interval_s:
            return
        self.last_sent_s = now_s
        stamp = battery.header.stamp
        reading = {
            # ROS time as {sec, nanosec}: the service takes it as it is, stored to the microsecond.
            "timestamp": {"sec": stamp.sec, "nanosec": stamp.nanosec},
            "battery_level": round(100.0 * battery.percentage, 1),  # BatteryState: 0-1; the service: percent
            "location": {"latitude": self.fix.latitude, "longitude": self.fix.longitude},
        }
        if not math.isnan(battery.voltage):
            reading["battery_voltage"] = battery.voltage
        if not math.isnan(self.fix.altitude):
            reading["altitude"] = self.fix.altitude
        self.client.record(reading)

    def destroy_node(self) -> None:
        self.client.close()  # what was not acknowledged stays in the outbox for the next start
        super().destroy_node()


def main() -> None:
    rclpy.init()
    node = FleetBridge()
    try:
        rclpy.spin(node)
    finally:
        node.destroy_node()
        rclpy.shutdown()


if __name__ == "__main__":
    main()
