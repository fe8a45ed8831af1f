"""The simulator's scripted incidents, phase by phase, and its demo rules (valid for the API's rule decoder)."""

from __future__ import annotations

import msgspec

from app.alerts.rules import decode_rule
from simulator.fleet import SITE_HALF_SIZE_M, build_fleet
from simulator.incidents import Incidents, demo_rules
from simulator.run import SimConfig

CENTRE = (37.4275, -122.1697)


def test_each_incident_happens_in_its_phase_and_ends() -> None:
    fleet = build_fleet(6, CENTRE, seed=1)
    incidents = Incidents(fleet, CENTRE)
    drained, silent, wanderer, faulty, stuck, _ = fleet
    assert incidents.apply(0.0) == frozenset()
    silenced = incidents.apply(30.0)
    assert silenced == {silent.robot_id}
    assert drained.battery == 0.0 and faulty.status == "error" and stuck.status == "moving"
    assert (wanderer.latitude - CENTRE[0]) * 111_000 > SITE_HALF_SIZE_M  # north of the site's edge
    frozen = (stuck.latitude, stuck.longitude)
    stuck.step(5.0)
    incidents.apply(35.0)
    assert (stuck.latitude, stuck.longitude) == frozen  # "moving", and not moving
    assert incidents.apply(46.0) == frozenset()
    assert drained.battery == 100.0 and abs(wanderer.latitude - CENTRE[0]) < 1e-9


def test_demo_rules_are_valid_rules() -> None:
    rules = [decode_rule(msgspec.json.encode(rule)) for rule in demo_rules(CENTRE)]
    assert {rule.condition.__struct_config__.tag for rule in rules} == {
        "battery", "offline", "geofence", "status", "stationary"
    }  # fmt: skip


def test_the_offline_rule_outlasts_a_robots_send_interval_and_not_the_silence() -> None:
    defaults = SimConfig()
    send_interval_s = defaults.batch / defaults.rate_hz
    [silent] = [rule for rule in demo_rules(CENTRE) if rule["condition"]["kind"] == "offline"]
    after_s = int(silent["condition"]["after"].removesuffix("s"))
    assert 2 * send_interval_s <= after_s
    fleet = build_fleet(6, CENTRE, seed=1)
    incidents = Incidents(fleet, CENTRE)
    silent_s = sum(1 for second in range(60) if fleet[1].robot_id in incidents.apply(second))
    assert silent_s >= after_s + send_interval_s  # the scripted silence still raises the alert
