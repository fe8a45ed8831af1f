"""The alert rules the ingest benchmark runs with: 100 of them, as a site with per-robot exceptions would have."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.dataset import CENTRE
from simulator.fleet import SITE_HALF_SIZE_M, metres_to_degrees

RULES = 100
FLEET_WIDE = 10


def square(half_m: float, centre: tuple[float, float] = CENTRE) -> dict[str, Any]:
    d_lat, d_lon = metres_to_degrees(half_m, half_m, centre[0])
    lat, lon = centre
    ring = [
        [lon - d_lon, lat - d_lat],
        [lon + d_lon, lat - d_lat],
        [lon + d_lon, lat + d_lat],
        [lon - d_lon, lat + d_lat],
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def bench_rules(robot_ids: Sequence[str]) -> list[dict[str, Any]]:
    """10 fleet-wide rules of every kind, and 90 for single robots (each overriding a fleet rule of its kind for
    that robot). Every robot is then checked against about 8 reading rules per round."""
    fleet: list[dict[str, Any]] = [
        {"kind": "battery", "below": 20, "margin": 5},
        {"kind": "status", "statuses": ["error"]},
        {"kind": "geofence", "area": "allowed", "geometry": square(SITE_HALF_SIZE_M - 20)},
        {"kind": "geofence", "area": "forbidden", "geometry": square(30)},
        {"kind": "field", "field": "motor_temp_c", "above": 80, "margin": 5},
        {"kind": "field", "field": "motor_temp_c", "below": -10},
        {"kind": "offline", "after": "5m"},
        {"kind": "stationary", "after": "10m", "within_m": 5},
        {"kind": "stationary", "after": "30m", "within_m": 20},
        {"kind": "offline", "after": "1h"},
    ]
    own: list[dict[str, Any]] = [
        {"kind": "battery", "below": 40, "margin": 5},
        {"kind": "status", "statuses": ["error", "charging"]},
        {"kind": "geofence", "area": "forbidden", "geometry": square(100)},
        {"kind": "field", "field": "motor_temp_c", "above": 35, "margin": 2},
    ]
    rules = [{"name": f"fleet {i}", "condition": condition} for i, condition in enumerate(fleet)]
    for i in range(RULES - FLEET_WIDE):
        robot_id = robot_ids[i * len(robot_ids) // (RULES - FLEET_WIDE)]
        rules.append({"name": f"robot {i}", "condition": own[i % len(own)], "robot_id": robot_id})
    return rules
