"""The simulated fleet: robots that drive between waypoints on a site, drain and charge, and sometimes fault."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from faker import Faker

EARTH_RADIUS_M = 6_371_000.0
SITE_HALF_SIZE_M = 400.0  # the site is a square bounding box 800 m on a side around the centre
SPEED_RANGE_M_PER_S = (0.6, 2.2)  # walking pace to a slow utility vehicle
DRAIN_MOVING_PCT_PER_S = 0.012  # ~2.3 h from full while driving
DRAIN_WORKING_PCT_PER_S = 0.018
DRAIN_IDLE_PCT_PER_S = 0.001
CHARGE_PCT_PER_S = 0.05  # ~33 min from empty at the dock
LOW_BATTERY_PCT = 20.0
FULL_BATTERY_PCT = 95.0
FAULT_PROBABILITY_PER_S = 0.0005  # about one fault per robot every half hour of simulated time
FAULT_DURATION_S = (20.0, 120.0)
PACK_EMPTY_V, PACK_FULL_V = 21.0, 25.2  # a 24 V lithium pack (6S): voltage tracks the state of charge


def metres_to_degrees(d_north_m: float, d_east_m: float, at_latitude: float) -> tuple[float, float]:
    d_lat = math.degrees(d_north_m / EARTH_RADIUS_M)
    d_lon = math.degrees(d_east_m / (EARTH_RADIUS_M * math.cos(math.radians(at_latitude))))
    return d_lat, d_lon


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def voltage_for(battery_pct: float) -> float:
    return round(PACK_EMPTY_V + (PACK_FULL_V - PACK_EMPTY_V) * battery_pct / 100.0, 3)


@dataclass
class Robot:
    robot_id: str
    serial: str
    latitude: float
    longitude: float
    dock: tuple[float, float]
    battery: float
    speed_m_per_s: float
    rng: random.Random
    centre: tuple[float, float]
    status: str = "idle"
    target: tuple[float, float] | None = None
    status_left_s: float = 0.0
    seq: int = 0
    odometer_m: float = field(default=0.0)

    def step(self, dt_s: float) -> None:
        """Advance the robot by ``dt_s`` seconds of simulated time."""
        self.status_left_s -= dt_s
        if self.status != "error" and self.rng.random() < FAULT_PROBABILITY_PER_S * dt_s:
            self.status, self.status_left_s = "error", self.rng.uniform(*FAULT_DURATION_S)
        if self.status == "error":
            if self.status_left_s <= 0:
                self.status = "idle"
        elif self.status == "charging":
            self.battery = min(100.0, self.battery + CHARGE_PCT_PER_S * dt_s)
            if self.battery >= FULL_BATTERY_PCT:
                self.status, self.status_left_s = "idle", self.rng.uniform(5, 30)
        elif self.status == "moving":
            self._drive(dt_s)
        elif self.status == "working":
            self.battery = max(0.0, self.battery - DRAIN_WORKING_PCT_PER_S * dt_s)
            if self.status_left_s <= 0:
                self._choose_next()
        elif self.status_left_s <= 0:  # idle
            self._choose_next()
        if self.status == "idle":
            self.battery = max(0.0, self.battery - DRAIN_IDLE_PCT_PER_S * dt_s)

    def _choose_next(self) -> None:
        if self.battery < LOW_BATTERY_PCT:
            self.target = self.dock
        else:
            north = self.rng.uniform(-SITE_HALF_SIZE_M, SITE_HALF_SIZE_M)
            east = self.rng.uniform(-SITE_HALF_SIZE_M, SITE_HALF_SIZE_M)
            d_lat, d_lon = metres_to_degrees(north, east, self.centre[0])
            self.target = (self.centre[0] + d_lat, self.centre[1] + d_lon)
        self.status = "moving"

    def _drive(self, dt_s: float) -> None:
        assert self.target is not None
        remaining = haversine_m(self.latitude, self.longitude, *self.target)
        travel = min(remaining, self.speed_m_per_s * dt_s)
        if remaining > 0:
            fraction = travel / remaining
            self.latitude += (self.target[0] - self.latitude) * fraction
            self.longitude += (self.target[1] - self.longitude) * fraction
        self.odometer_m += travel
        self.battery = max(0.0, self.battery - DRAIN_MOVING_PCT_PER_S * dt_s)
        if travel >= remaining:
            if self.target == self.dock and self.battery < FULL_BATTERY_PCT:
                self.status = "charging"
            else:
                self.status, self.status_left_s = "working", self.rng.uniform(30, 300)
            self.target = None

    def reading(self, at: datetime) -> dict[str, Any]:
        """The JSON-ready reading this robot would send at ``at``."""
        self.seq += 1
        return {
            "robot_id": self.robot_id,
            "timestamp": at.isoformat(),
            "location": {"latitude": round(self.latitude, 7), "longitude": round(self.longitude, 7)},
            "battery_level": round(self.battery, 2),
            "battery_voltage": voltage_for(self.battery),
            "status": self.status,
            "seq": self.seq,
        }


def build_fleet(count: int, centre: tuple[float, float], seed: int) -> list[Robot]:
    """``count`` robots with faker names and serials, reproducible for a given ``seed``."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    robots = []
    for index in range(count):
        # The index keeps ids unique however often faker repeats a name.
        robot_id = f"{fake.first_name().upper()}-{index:04d}"
        serial = fake.bothify("SN-####-??").upper()
        north = rng.uniform(-SITE_HALF_SIZE_M, SITE_HALF_SIZE_M)
        east = rng.uniform(-SITE_HALF_SIZE_M, SITE_HALF_SIZE_M)
        d_lat, d_lon = metres_to_degrees(north, east, centre[0])
        dock_lat, dock_lon = metres_to_degrees(-SITE_HALF_SIZE_M, (index % 10) * 5.0, centre[0])
        robots.append(
            Robot(
                robot_id=robot_id,
                serial=serial,
                latitude=centre[0] + d_lat,
                longitude=centre[1] + d_lon,
                dock=(centre[0] + dock_lat, centre[1] + dock_lon),
                battery=rng.uniform(35, 100),
                speed_m_per_s=rng.uniform(*SPEED_RANGE_M_PER_S),
                rng=random.Random(rng.random()),
                centre=centre,
                status_left_s=rng.uniform(0, 20),
            )
        )
    return robots
