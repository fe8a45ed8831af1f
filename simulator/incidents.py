"""Scripted incidents for ``--incidents``: the first five robots, in a cycle of ``PERIOD_S``, run a battery flat,
go silent, leave the site, fault, and get stuck while "moving"; demo alert rules that catch each one; and a
printer of the alert events the API streams back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.fleet import SITE_HALF_SIZE_M, Robot, metres_to_degrees

PERIOD_S = 90.0
DEMO_PREFIX = "demo: "
OUTSIDE_M = 150.0  # how far past the site's edge the wandering robot goes
SITE_MARGIN_M = 50.0  # the demo geofence: the site square plus this


# Twice a robot's send interval by default (10 readings a POST at 1 Hz): at 10 s, equal to it, the demo raised a
# false offline alert about every 30 s. The silent robot sends nothing for 30 s, so it is still caught.
OFFLINE_AFTER_S = 20


def demo_rules(centre: tuple[float, float]) -> list[dict[str, Any]]:
    """One rule per incident, fleet-wide."""
    half = SITE_HALF_SIZE_M + SITE_MARGIN_M
    d_lat, d_lon = metres_to_degrees(half, half, centre[0])
    lat, lon = centre
    ring = [[lon - d_lon, lat - d_lat], [lon + d_lon, lat - d_lat], [lon + d_lon, lat + d_lat]]
    ring += [[lon - d_lon, lat + d_lat], [lon - d_lon, lat - d_lat]]
    site = {"type": "Polygon", "coordinates": [ring]}
    conditions: list[tuple[str, dict[str, Any]]] = [
        ("battery low", {"kind": "battery", "below": 15, "margin": 5}),
        ("silent", {"kind": "offline", "after": f"{OFFLINE_AFTER_S}s"}),
        ("left the site", {"kind": "geofence", "area": "allowed", "geometry": site}),
        ("fault", {"kind": "status", "statuses": ["error"]}),
        ("stuck", {"kind": "stationary", "after": "20s", "within_m": 3}),
    ]  # fmt: skip
    return [{"name": DEMO_PREFIX + name, "condition": condition} for name, condition in conditions]


async def ensure_demo_rules(client: httpx.AsyncClient, centre: tuple[float, float]) -> int:
    """Create the demo rules that do not exist yet (by name); returns how many were created."""
    response = await client.get("/alert-rules", params={"limit": 1000})
    response.raise_for_status()
    existing = {rule["name"] for rule in response.json()["rules"]}
    created = 0
    for rule in demo_rules(centre):
        if rule["name"] not in existing:
            (await client.post("/alert-rules", json=rule)).raise_for_status()
            created += 1
    return created


@dataclass
class Incidents:
    """Applied after each step of the fleet: overrides the scripted robots' state for the phase of the cycle."""

    fleet: Sequence[Robot]
    centre: tuple[float, float]
    _frozen: tuple[float, float] | None = field(default=None, init=False)

    def apply(self, elapsed_s: float) -> frozenset[str]:
        """Change the scripted robots for this moment; returns the ids of robots that send nothing now."""
        if len(self.fleet) < 5:
            return frozenset()
        drained, silent, wanderer, faulty, stuck = self.fleet[:5]
        phase = elapsed_s % PERIOD_S
        if 5 <= phase < 45:  # flat in 20 s, then empty until a battery swap
            drained.battery = max(0.0, 80.0 - (phase - 5) * 4)
        elif 45 <= phase < 47:
            drained.battery = 100.0
        if 15 <= phase < 45:
            d_lat, _ = metres_to_degrees(SITE_HALF_SIZE_M + OUTSIDE_M, 0.0, self.centre[0])
            wanderer.latitude, wanderer.longitude, wanderer.target = self.centre[0] + d_lat, self.centre[1], None
            wanderer.status = "idle"
        elif 45 <= phase < 47:
            wanderer.latitude, wanderer.longitude = self.centre
        if 20 <= phase < 40:
            faulty.status, faulty.status_left_s = "error", 1.0
        if 25 <= phase < 60:
            if self._frozen is None:
                self._frozen = (stuck.latitude, stuck.longitude)
            stuck.latitude, stuck.longitude = self._frozen
            stuck.status, stuck.target = "moving", self._frozen
        else:
            self._frozen = None
        return frozenset({silent.robot_id}) if 10 <= phase < 40 else frozenset()


def describe_alert_event(event_type: str, data: str) -> str:
    alert = json.loads(data)
    verb = {"alert.opened": "OPENED", "alert.acknowledged": "acknowledged", "alert.resolved": "resolved"}
    return (
        f"alert {verb.get(event_type, event_type):<12} {alert['robot_id']:<14} {alert['rule_name']}: {alert['reason']}"
    )
