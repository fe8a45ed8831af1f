"""Alerts through the API, each round run by the test: each rule kind opens once and resolves once, scopes
override, alerts are acknowledged one by one and in bulk, rules are bounded and checked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.alerts import store as alerts
from app.alerts.payloads import MAX_BULK_ACKNOWLEDGE
from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from app.web.app import create_app
from tests.support.alerts import SITE, alerts_of, create_rule, open_alerts, post, resolved_alerts
from tests.support.auth import bearer, issue_key, issue_robot
from tests.support.builders import reading
from tests.support.problems import assert_problem
from tests.support.servers import Served, serve_app_in_process

# Rules that hold by the passing of time (offline, stationary) are judged by the server's clock, which these
# tests do not fake: they wait out the rule's duration, and nothing else.
RULE_DURATION_S = 1.0


@pytest.fixture
def api(served: Served) -> httpx.AsyncClient:
    return served.http


async def evaluate(served: Served) -> None:
    """One alert round, now: every committed reading followed, every rule judged."""
    assert await served.services.alerts.run_round()


async def test_battery_opens_once_and_clears_only_past_the_margin(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "battery", "below": 20, "margin": 5})
    await post(api, "b1", battery_level=50)
    await post(api, "b1", battery_level=15)
    await evaluate(served)
    opened = await open_alerts(api, "b1")
    assert [(a["kind"], a["state"]) for a in opened] == [("battery", "active")]
    assert "15" in opened[0]["reason"]
    for level in (12, 21, 24):  # still low, then inside the band [20, 25): the alert stays open, and only one
        await post(api, "b1", battery_level=level)
        await evaluate(served)
    assert [a["alert_id"] for a in await open_alerts(api, "b1")] == [opened[0]["alert_id"]]
    await post(api, "b1", battery_level=26)
    await evaluate(served)
    resolved = await resolved_alerts(api, "b1")
    assert resolved[0]["resolved_at"] is not None and await open_alerts(api, "b1") == []
    assert len(await alerts_of(api, "b1")) == 1


async def test_status_error_opens_and_resolves(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "status"})  # default: ["error"]
    await post(api, "s1", status="moving")
    await post(api, "s1", status="error")
    await evaluate(served)
    assert len(await open_alerts(api, "s1")) == 1
    await post(api, "s1", status="error")
    await post(api, "s1", status="idle")
    await evaluate(served)
    assert len(await resolved_alerts(api, "s1")) == 1
    assert len(await alerts_of(api, "s1")) == 1


async def test_offline_goes_by_the_server_clock(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "offline", "after": "1s"})
    # Stamped ten minutes ago by a slow clock, but received now: the robot is not offline.
    await post(api, "o1", timestamp=(datetime.now(UTC) - timedelta(minutes=10)).isoformat())
    await evaluate(served)
    assert await alerts_of(api, "o1") == []
    await asyncio.sleep(RULE_DURATION_S)
    await evaluate(served)
    opened = await open_alerts(api, "o1")
    assert [a["kind"] for a in opened] == ["offline"]
    await post(api, "o1")
    await evaluate(served)
    assert len(await resolved_alerts(api, "o1")) == 1
    assert len(await alerts_of(api, "o1")) == 1


async def test_geofence_allowed_area(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "geofence", "area": "allowed", "geometry": SITE})
    await post(api, "g1", location={"latitude": 37.1, "longitude": -122.3})
    await evaluate(served)
    assert await alerts_of(api, "g1") == []
    await post(api, "g1", location={"latitude": 37.2, "longitude": -122.3})
    await evaluate(served)
    opened = await open_alerts(api, "g1")
    assert "outside" in opened[0]["reason"]
    # No location (null: the builder's default position left out): no decision, the alert stays open.
    await post(api, "g1", location=None, pose={"frame": "map", "x": 1.0, "y": 2.0})
    await evaluate(served)
    assert len(await open_alerts(api, "g1")) == 1
    await post(api, "g1", location={"latitude": 37.11, "longitude": -122.3})  # on the edge counts as inside
    await evaluate(served)
    assert len(await resolved_alerts(api, "g1")) == 1
    assert len(await alerts_of(api, "g1")) == 1


async def test_field_threshold_with_margin(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "field", "field": "motor_temp_c", "above": 80, "margin": 5})
    await post(api, "f1", fields={"motor_temp_c": 85.5})
    await evaluate(served)
    assert len(await open_alerts(api, "f1")) == 1
    await post(api, "f1", fields={"motor_temp_c": 78})  # cooler, but not by the margin
    await post(api, "f1", fields={"other": 1})  # without the field: no decision
    await evaluate(served)
    assert len(await open_alerts(api, "f1")) == 1
    await post(api, "f1", fields={"motor_temp_c": 74})
    await evaluate(served)
    assert len(await resolved_alerts(api, "f1")) == 1


async def test_stationary_while_moving(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "stationary", "after": "1s", "within_m": 5})
    here = {"latitude": 37.1, "longitude": -122.3}
    await post(api, "m1", status="moving", location=here)
    await evaluate(served)
    assert await alerts_of(api, "m1") == []
    await post(api, "m1", status="moving", location={"latitude": 37.10001, "longitude": -122.3})  # 1.1 m on
    await evaluate(served)
    assert await alerts_of(api, "m1") == []  # not yet for a second
    await asyncio.sleep(RULE_DURATION_S)
    await evaluate(served)
    opened = await open_alerts(api, "m1")
    assert "within 5 m" in opened[0]["reason"]
    await post(api, "m1", status="moving", location={"latitude": 37.101, "longitude": -122.3})  # 111 m on
    await evaluate(served)
    assert len(await resolved_alerts(api, "m1")) == 1


async def test_a_robot_rule_overrides_the_fleet_rule_of_its_kind(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "battery", "below": 20, "margin": 5})
    own = await create_rule(api, {"kind": "battery", "below": 50, "margin": 5}, robot_id="picky")
    await post(api, "picky", battery_level=40)
    await post(api, "calm", battery_level=40)
    await evaluate(served)
    opened = await open_alerts(api, "picky")
    await post(api, "picky", battery_level=10)  # below both: still only its own rule's alert
    await evaluate(served)
    assert [a["rule_id"] for a in await open_alerts(api, "picky")] == [own["rule_id"]] == [opened[0]["rule_id"]]
    assert await alerts_of(api, "calm") == []


async def test_acknowledge_then_conflicts(served: Served) -> None:
    api = served.http
    await create_rule(api, {"kind": "status", "statuses": ["error", "charging"]})
    await post(api, "a1", status="charging")
    await evaluate(served)
    (alert,) = await open_alerts(api, "a1")
    assert alert["sequence"] == 1
    response = await api.post(f"/alerts/{alert['alert_id']}/acknowledge", json={"note": "on my way"})
    assert response.status_code == 200, response.text
    acknowledged = response.json()
    assert (acknowledged["state"], acknowledged["note"], acknowledged["sequence"]) == ("acknowledged", "on my way", 2)
    assert acknowledged["acknowledged_by"] and acknowledged["acknowledged_at"]
    assert (await api.get("/alerts", params={"state": "acknowledged"})).json()["alerts"][0]["alert_id"] == alert[
        "alert_id"
    ]
    assert_problem(await api.post(f"/alerts/{alert['alert_id']}/acknowledge"), ErrorKind.CONFLICT)
    await post(api, "a1", status="idle")
    await evaluate(served)
    (done,) = await resolved_alerts(api, "a1")
    assert done["acknowledged_by"] == acknowledged["acknowledged_by"]  # the history keeps every step
    assert done["sequence"] == 3  # webhook receivers order an alert's events by it
    assert_problem(await api.post(f"/alerts/{alert['alert_id']}/acknowledge"), ErrorKind.CONFLICT)
    assert_problem(await api.post("/alerts/999999/acknowledge"), ErrorKind.UNKNOWN_ALERT)
    assert_problem(await api.get("/alerts/999999"), ErrorKind.UNKNOWN_ALERT)


async def test_alerts_are_acknowledged_in_bulk_and_listed_by_rule_and_opening_time(
    api: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    fault = await create_rule(api, {"kind": "status"})
    battery = await create_rule(api, {"kind": "battery", "below": 20})
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    rows = [(fault, f"f{i}", at + timedelta(minutes=i)) for i in range(5)] + [(battery, "b0", at)]
    for rule, robot_id, opened_at in rows:
        await conn.execute(
            "INSERT INTO alerts (rule_id, rule_name, kind, robot_id, reason, opened_at)"
            " VALUES ($1, $2, $3, $4, 'x', $5)",
            rule["rule_id"],
            rule["name"],
            rule["condition"]["kind"],
            robot_id,
            opened_at,
        )
    by_rule = (await api.get("/alerts", params={"rule_id": fault["rule_id"]})).json()["alerts"]
    assert sorted(a["robot_id"] for a in by_rule) == ["f0", "f1", "f2", "f3", "f4"]
    window = {"since": "2026-11-27T08:01:00Z", "until": "2026-11-27T08:03:00Z"}  # [since, until)
    assert [a["robot_id"] for a in (await api.get("/alerts", params=window)).json()["alerts"]] == ["f2", "f1"]
    assert_problem(await api.get("/alerts", params={"since": "yesterday"}), ErrorKind.BAD_PARAMETER)
    reversed_range = {"since": window["until"], "until": window["since"]}
    assert_problem(await api.get("/alerts", params=reversed_range), ErrorKind.BAD_RANGE)

    ids = sorted(a["alert_id"] for a in by_rule)
    await api.post(f"/alerts/{ids[0]}/acknowledge")  # acknowledged already: unchanged, not refused
    body = {"alert_ids": [*ids, 2**40], "note": "storm: site power cut"}
    response = await api.post("/alerts/acknowledge", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [a["alert_id"] for a in answer["acknowledged"]] == ids[1:]
    assert {a["note"] for a in answer["acknowledged"]} == {"storm: site power cut"}
    assert answer["unchanged"] == [ids[0], 2**40]
    states = {a["robot_id"]: a["state"] for a in (await api.get("/alerts")).json()["alerts"]}
    assert states == {**{f"f{i}": "acknowledged" for i in range(5)}, "b0": "active"}
    # At most MAX_BULK_ACKNOWLEDGE ids a call, at least one; a body that is not the shape is refused whole.
    too_many = {"alert_ids": list(range(1, MAX_BULK_ACKNOWLEDGE + 2))}
    bad: dict[str, Any]
    for bad in (too_many, {"alert_ids": []}, {"alert_ids": [0]}, {"alert_ids": ids, "by": "me"}):
        assert_problem(await api.post("/alerts/acknowledge", json=bad), ErrorKind.BAD_PARAMETER)
    assert_problem(await api.post("/alerts/acknowledge", content=b"{"), ErrorKind.MALFORMED_BODY)
    assert_problem(await api.post(f"/alerts/{ids[1]}/acknowledge", content=b"{"), ErrorKind.MALFORMED_BODY)


async def test_deleting_a_rule_resolves_its_alerts_and_keeps_them(served: Served) -> None:
    api = served.http
    rule = await create_rule(api, {"kind": "status"})
    await post(api, "d1", status="error")
    await evaluate(served)
    assert len(await open_alerts(api, "d1")) == 1
    assert (await api.delete(f"/alert-rules/{rule['rule_id']}")).status_code == 204
    (kept,) = await alerts_of(api, "d1")
    assert (kept["state"], kept["resolution"], kept["rule_id"]) == ("resolved", "rule deleted", None)
    assert_problem(await api.get(f"/alert-rules/{rule['rule_id']}"), ErrorKind.UNKNOWN_ALERT_RULE)
    assert_problem(await api.delete(f"/alert-rules/{rule['rule_id']}"), ErrorKind.UNKNOWN_ALERT_RULE)


async def test_rules_are_listed_replaced_and_paged(api: httpx.AsyncClient) -> None:
    made = [await create_rule(api, {"kind": "battery", "below": 10 + i}) for i in range(3)]
    first = (await api.get("/alert-rules", params={"limit": 2})).json()
    assert [r["rule_id"] for r in first["rules"]] == [r["rule_id"] for r in made[:2]]
    rest = (await api.get("/alert-rules", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [r["rule_id"] for r in rest["rules"]] == [made[2]["rule_id"]] and rest["next_cursor"] is None
    assert_problem(await api.get("/alerts", params={"cursor": first["next_cursor"]}), ErrorKind.BAD_CURSOR)
    replaced = await api.put(
        f"/alert-rules/{made[0]['rule_id']}", json={"name": "renamed", "condition": {"kind": "offline", "after": "5m"}}
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["condition"]) == ("renamed", {"kind": "offline", "after": "5m"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "battery", "below": 150}, "$.condition.below"),
        ({"kind": "battery", "below": 98, "margin": 5}, "$.condition.margin"),
        ({"kind": "nope"}, "$.condition.kind"),
        ({"kind": "offline", "after": "0s"}, "$.condition.after"),
        ({"kind": "field", "field": "t"}, "$.condition"),
        ({"kind": "field", "field": "t\u0000", "above": 1}, "$.condition.field"),
        # a bow tie: its ring crosses itself
        (
            {"kind": "geofence", "area": "allowed", "geometry": {"type": "Polygon", "coordinates": [
                [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
            "$.condition.geometry",
        ),
        (
            {"kind": "geofence", "area": "allowed", "geometry": {"type": "Polygon", "coordinates": [
                [[0, 0], [1, 0], [1, 1], [0, 1]]]}},
            "$.condition.geometry",
        ),
        (
            {"kind": "geofence", "area": "inside", "geometry": SITE},
            "$.condition.area",
        ),
    ],
)  # fmt: skip
async def test_invalid_rules_are_422_and_not_stored(
    api: httpx.AsyncClient, conn: asyncpg.Connection, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(
        await api.post("/alert-rules", json={"name": "bad", "condition": body}), ErrorKind.INVALID_RULE
    )
    assert problem["errors"][0]["field"] == field, problem
    assert await conn.fetchval("SELECT count(*) FROM alert_rules") == 0


async def test_a_rule_with_two_scopes_or_bad_json_is_refused(api: httpx.AsyncClient) -> None:
    both = {"name": "x", "condition": {"kind": "status"}, "robot_id": "a", "fleet_tag": "b"}
    assert_problem(await api.post("/alert-rules", json=both), ErrorKind.INVALID_RULE)
    assert_problem(await api.post("/alert-rules", content=b"{"), ErrorKind.MALFORMED_BODY)


async def test_the_database_keeps_one_open_alert_per_rule_and_robot(
    api: httpx.AsyncClient, database_url: str, conn: asyncpg.Connection
) -> None:
    rule = await create_rule(api, {"kind": "status"})
    pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
    try:
        rounds = await asyncio.gather(
            *(alerts.apply_transitions(pool, [(rule["rule_id"], "r", "status", "racer", "why")], []) for _ in range(20))
        )
    finally:
        await pool.close()
    assert sum(len(opened) for opened, _ in rounds) == 1
    assert await conn.fetchval("SELECT count(*) FROM alerts WHERE robot_id = 'racer'") == 1


async def test_opening_an_alert_for_a_rule_deleted_meanwhile_is_a_no_op(
    api: httpx.AsyncClient, database_url: str, conn: asyncpg.Connection
) -> None:
    rule = await create_rule(api, {"kind": "status"})
    assert (await api.delete(f"/alert-rules/{rule['rule_id']}")).status_code == 204
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:  # an evaluation that began before the delete
        assert await alerts.apply_transitions(pool, [(rule["rule_id"], "r", "status", "late", "why")], []) == ([], [])
    finally:
        await pool.close()


async def test_options_lists_every_method_of_every_path(api: httpx.AsyncClient, alert_settings: Settings) -> None:
    """Litestar 2's default OPTIONS answer names only a path's first handler (litestar#4169): every path with
    several methods must declare its own (app.web.options)."""
    checked = 0
    for route in create_app(alert_settings).routes:
        methods = {m for h in getattr(route, "route_handlers", []) for m in h.http_methods} - {"HEAD"}
        if len(methods) < 3 or "{" in route.path.replace("{rule_id:int}", "7"):
            continue  # one method besides OPTIONS cannot be wrong; other parameters need real values
        response = await api.options(route.path.replace("{rule_id:int}", "7"))
        assert response.status_code == 204, (route.path, response.status_code)
        assert set(response.headers["allow"].split(", ")) == methods, route.path
        checked += 1
    assert checked >= 3


async def test_a_robot_is_judged_by_its_newest_reading_whatever_the_body_order(
    served: Served, conn: asyncpg.Connection
) -> None:
    api = served.http
    await create_rule(api, {"kind": "battery", "below": 20, "margin": 5})
    now = datetime.now(UTC)
    for i in range(10):
        newest, older = now - timedelta(seconds=1), now - timedelta(seconds=2)
        fine = [reading(f"fine-{i}", newest, battery_level=80), reading(f"fine-{i}", older, battery_level=5)]
        low = [reading(f"low-{i}", newest, battery_level=5), reading(f"low-{i}", older, battery_level=80)]
        for body in (fine, low):  # newest first, as a robot flushing its buffer backwards sends them
            assert (await api.post("/telemetry", json=body)).status_code == 200
    await evaluate(served)
    opened = {r["robot_id"] for r in await conn.fetch("SELECT robot_id FROM alerts WHERE resolved_at IS NULL")}
    assert opened == {f"low-{i}" for i in range(10)}


async def test_a_reading_whose_process_died_after_its_commit_is_followed(
    served: Served, conn: asyncpg.Connection
) -> None:
    """Committed by a process that was killed before it wrote the latest state or evaluated it (here: stored by
    another connection, which no process hears of): a round of any process takes it up."""
    api = served.http
    await create_rule(api, {"kind": "battery", "below": 20})
    key = await conn.fetchval("INSERT INTO robots (robot_id) VALUES ('orphan') RETURNING robot_key")
    await conn.execute(
        "INSERT INTO telemetry (robot_key, time, latitude, longitude, battery_level) VALUES ($1, now(), 1, 2, 5)", key
    )
    await evaluate(served)
    assert len(await open_alerts(api, "orphan")) == 1
    state = (await api.get("/robots/orphan")).json()
    assert state["battery_level"] == 5


async def test_an_alert_of_the_longest_text_announces_resolves_and_leaves_others_alerting(
    alert_settings: Settings, conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """N8: a rule name, a field name, a key name and a note at their length limits, in characters JSON escapes six
    bytes apiece, made an event over NOTIFY's 8000 bytes: it never resolved, its rule could not be deleted, and
    the timer rules stopped opening alerts for everyone."""
    name, field, key_name, note = "\x01" * 100, "\x05" * 64, "\x03" * 100, "\x02" * 1000
    n8 = "\U00013000" * 64  # the longest robot id in bytes: 64 characters of 4
    for robot_id in (n8, "quiet"):
        await issue_robot(pool, robot_id)
    key = await issue_key(pool, key_name, "admin", "read", "operate", "ingest")
    async with serve_app_in_process(replace_settings(alert_settings, auth="on")) as served:
        api = served.http
        api.headers.update(bearer(key))
        body = {"name": name, "condition": {"kind": "field", "field": field, "above": 1}, "robot_id": n8}
        rule = await api.post("/alert-rules", json=body)
        assert rule.status_code == 201, rule.text
        await create_rule(api, {"kind": "offline", "after": "1s"}, robot_id="quiet")
        await post(api, n8, fields={field: 2})
        await evaluate(served)
        (alert,) = await open_alerts(api, n8)
        acknowledged = await api.post(f"/alerts/{alert['alert_id']}/acknowledge", json={"note": note})
        assert acknowledged.status_code == 200, acknowledged.text
        await post(api, n8, fields={field: 0})
        await evaluate(served)
        (done,) = await resolved_alerts(api, n8)
        assert (done["rule_name"], done["note"]) == (name, note)  # the alert itself keeps every character
        await post(api, "quiet", status="idle")
        await asyncio.sleep(RULE_DURATION_S)
        await evaluate(served)
        assert len(await open_alerts(api, "quiet")) == 1  # timer rules still open alerts
        assert (await api.delete(f"/alert-rules/{rule.json()['rule_id']}")).status_code == 204


async def test_rules_and_their_geofences_are_bounded(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    """N9: rules and geofence positions are capped, in all and per geofence, so evaluating and listing stay cheap."""

    def ring(size: int, east: float = 0.0) -> list[list[float]]:  # a closed square of `size` positions
        corners = [[-122.31 + east, 37.09], [-122.29 + east, 37.09], [-122.29 + east, 37.11], [-122.31 + east, 37.11]]
        return [*corners, *([-122.31 + east, 37.11 - i * 1e-6] for i in range(1, size - 4)), corners[0]]

    def fence(*rings: list[list[float]]) -> dict[str, Any]:
        geometry = {"type": "MultiPolygon", "coordinates": [[r] for r in rings]}
        return {"name": "yard", "condition": {"kind": "geofence", "area": "allowed", "geometry": geometry}}

    def status_rule(name: str) -> dict[str, Any]:
        return {"name": name, "condition": {"kind": "status"}}

    settings = replace_settings(alert_settings, max_alert_rules=3, max_geofence_positions=20)
    async with serve_app_in_process(settings) as served:
        api = served.http
        too_big = await api.post("/alert-rules", json=fence(ring(5001), ring(5000, east=1.0)))  # each ring fits
        assert "at most 10000 positions" in assert_problem(too_big, ErrorKind.INVALID_RULE)["detail"]
        yard = await api.post("/alert-rules", json=fence(ring(12)))
        assert yard.status_code == 201, yard.text
        over = await api.post("/alert-rules", json=fence(ring(12)))
        assert "FLEET_MAX_GEOFENCE_POSITIONS" in assert_problem(over, ErrorKind.CONFLICT)["detail"]
        # Replacing a rule counts its new size instead of its old one.
        replaced = await api.put(f"/alert-rules/{yard.json()['rule_id']}", json=fence(ring(20)))
        assert replaced.status_code == 200, replaced.text
        for name in ("one", "two"):
            assert (await api.post("/alert-rules", json=status_rule(name))).status_code == 201
        fourth = await api.post("/alert-rules", json=status_rule("four"))
        assert "FLEET_MAX_ALERT_RULES" in assert_problem(fourth, ErrorKind.CONFLICT)["detail"]
    assert await conn.fetchval("SELECT count(*) FROM alert_rules") == 3
    assert await conn.fetchval("SELECT sum(positions) FROM alert_rules") == 20
