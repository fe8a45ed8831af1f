"""The trust boundary with authentication on: tokens hashed at rest, 401 and 403, robots writing only their own
readings, scopes, limited keys, rotation, provisioning."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.auth.tokens import hash_token
from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from app.web.app import create_app
from tests.support.apps import SharedApps
from tests.support.auth import bearer, issue_key, issue_robot
from tests.support.builders import count_rows, reading
from tests.support.problems import assert_problem
from tests.support.servers import Served, serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
PUBLIC_ROUTES = {"/", "/docs"}
MIGRATION_013 = Path(__file__).resolve().parents[2] / "migrations" / "013_trust_limits.sql"


@pytest.fixture
async def served(shared_apps: SharedApps, auth_settings: Settings, conn: asyncpg.Connection) -> Served:
    return await shared_apps.get(auth_settings)


async def test_no_or_bad_credential_is_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer flt_k_nope"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = await client.get("/robots", headers=headers)
        assert_problem(response, ErrorKind.UNAUTHENTICATED)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await client.post("/telemetry/", json=reading(at=NOW)), ErrorKind.UNAUTHENTICATED)
    health = (await client.get("/")).json()
    assert health["authentication"] == "on"


async def test_wrong_scope_is_403_naming_it(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    reader = await issue_key(pool, "reader", "read")
    response = await client.get("/telemetry/stream", headers=bearer(reader))
    problem = assert_problem(response, ErrorKind.FORBIDDEN)
    assert "'stream'" in problem["detail"] and 'scope="stream"' in response.headers["www-authenticate"]
    assert_problem(await client.get("/admin/credentials", headers=bearer(reader)), ErrorKind.FORBIDDEN)
    assert (await client.get("/robots", headers=bearer(reader))).status_code == 200


async def test_robot_token_writes_only_its_own_readings(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    token = await issue_robot(pool, "R1")
    await issue_robot(pool, "R2")
    ok = await client.post("/telemetry/", json=reading("R1", NOW), headers=bearer(token))
    assert ok.json() == {"accepted": 1, "duplicates": 0}
    spoof = [reading("R1", NOW + timedelta(seconds=1)), reading("R2", NOW), reading("R2", NOW + timedelta(seconds=1))]
    problem = assert_problem(await client.post("/telemetry/", json=spoof, headers=bearer(token)), ErrorKind.FORBIDDEN)
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, "$[1].robot_id"), (2, "$[2].robot_id")]
    assert await count_rows(conn) == (1, 2)  # nothing of the spoofing request was stored
    # A robot token cannot read, not even its own robot.
    assert_problem(await client.get("/telemetry/R1", headers=bearer(token)), ErrorKind.FORBIDDEN)
    assert_problem(await client.get("/robots", headers=bearer(token)), ErrorKind.FORBIDDEN)


async def test_ingest_key_writes_only_provisioned_robots(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await issue_robot(pool, "known")
    gateway = await issue_key(pool, "gateway", "ingest")
    body = [reading("known", NOW), reading("stranger", NOW)]
    problem = assert_problem(await client.post("/telemetry/", json=body, headers=bearer(gateway)), ErrorKind.FORBIDDEN)
    assert [e["index"] for e in problem["errors"]] == [1]
    assert await count_rows(conn) == (0, 1)  # the stranger was not self-registered
    ok = await client.post("/telemetry/", json=body[:1], headers=bearer(gateway))
    assert ok.json() == {"accepted": 1, "duplicates": 0}


async def test_tokens_are_hashed_at_rest_and_never_logged(
    auth_settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with serve_in_process(auth_settings) as client:
            admin_key = await issue_key(pool, "ops", "admin")
            issued = await client.post("/admin/robots", json={"robot_id": "R9"}, headers=bearer(admin_key))
            assert issued.status_code == 201, issued.text
            token = issued.json()["token"]
            assert token.startswith("flt_r_") and len(token) >= 6 + 43  # 256 bits, base64url
            await client.post("/telemetry/", json=reading("R9", NOW), headers=bearer(token))
            listing = await client.get("/admin/credentials", headers=bearer(admin_key))
    assert token not in listing.text and admin_key not in listing.text
    stored = await conn.fetch("SELECT token_hash, token_prefix FROM credentials")
    assert {bytes(r["token_hash"]) for r in stored} == {hash_token(token), hash_token(admin_key)}
    dump = "\n".join(str(tuple(r)) for r in await conn.fetch("SELECT * FROM credentials"))
    assert token not in dump and admin_key not in dump
    assert all(token not in r.getMessage() and admin_key not in r.getMessage() for r in caplog.records)


async def test_rotation_keeps_both_tokens_until_the_grace_ends(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    admin_key = await issue_key(pool, "ops", "admin")
    old = await issue_robot(pool, "rot")
    rotated = await client.post("/admin/robots/rot/tokens", headers=bearer(admin_key))
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["token"]
    for i, token in enumerate((old, new)):
        response = await client.post(
            "/telemetry/", json=reading("rot", NOW + timedelta(seconds=i)), headers=bearer(token)
        )
        assert response.status_code == 200, response.text
    await asyncio.sleep(1.2)  # rotation_grace_s=1 in these tests
    late = await client.post("/telemetry/", json=reading("rot", NOW + timedelta(seconds=5)), headers=bearer(old))
    assert_problem(late, ErrorKind.UNAUTHENTICATED)
    assert (await client.post("/telemetry/", json=reading("rot", NOW), headers=bearer(new))).status_code == 200


async def test_limited_keys_see_only_their_robots(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    gateway = await issue_key(pool, "gateway", "ingest")
    for robot_id, tag in (("a1", "north"), ("a2", "north"), ("b1", "south")):
        await issue_robot(pool, robot_id, tag)
    await client.post("/telemetry/", json=[reading(r, NOW) for r in ("a1", "a2", "b1")], headers=bearer(gateway))
    by_tag = await issue_key(pool, "north", "read", "export", fleet_tag="north")
    by_list = await issue_key(pool, "one", "read", robot_ids=["b1"])

    async def listed(key: str, path: str = "/robots", **params: str) -> list[str]:
        response = await client.get(path, headers=bearer(key), params=params)
        assert response.status_code == 200, response.text
        return sorted(r["robot_id"] for r in response.json()["robots"])

    assert await listed(by_tag) == ["a1", "a2"]
    assert await listed(by_list) == ["b1"]
    assert await listed(by_tag, "/fleet/low-battery", below="100") == ["a1", "a2"]
    assert await listed(by_list, "/fleet/distance", since=(NOW - timedelta(minutes=1)).isoformat()) == ["b1"]
    assert_problem(await client.get("/telemetry/b1", headers=bearer(by_tag)), ErrorKind.UNKNOWN_ROBOT)
    assert_problem(await client.get("/robots/a1", headers=bearer(by_list)), ErrorKind.UNKNOWN_ROBOT)
    assert (await client.get("/telemetry/a1/export.csv", headers=bearer(by_tag))).status_code == 200


async def test_post_needs_json_and_responses_carry_security_headers(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    token = await issue_robot(pool, "R1")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = await client.post(
            "/telemetry/", content=b'{"robot_id":"R1"}', headers={**bearer(token), "content-type": content_type}
        )
        assert_problem(response, ErrorKind.UNSUPPORTED_MEDIA_TYPE)
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        "access-control-allow-origin"
        not in (
            await client.options(
                "/robots", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
            )
        ).headers
    )


def test_every_route_but_health_and_docs_needs_a_credential(auth_settings: Settings) -> None:
    app = create_app(auth_settings)
    open_routes = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            # Litestar answers OPTIONS (CORS preflight) on every path by itself.
            if "scope" not in handler.opt and handler.http_methods != {"OPTIONS"}:
                open_routes.add(route.path)
    assert {path for path in open_routes if not path.startswith(("/docs", "/console"))} == {"/", "/problems/{slug:str}"}
    # The console's page and files hold no data: it asks for a key and sends it with every request.
    assert {path for path in open_routes if path.startswith("/console")} == {
        "/console",
        "/console/assets/{file_path:path}",
        "/console/vendor/leaflet/{file_path:path}",
        "/console/vendor/markercluster/{file_path:path}",
        "/console/vendor/uplot/{file_path:path}",
    }
    assert {path for path in open_routes if path.startswith("/docs")} <= {
        "/docs",
        "/docs/",
        "/docs/openapi.json",
        "/docs/openapi.yaml",
        "/docs/openapi.yml",
        "/docs/oauth2-redirect.html",
        "/docs/assets/{file_path:path}",
        "/docs/{path:str}",  # the render plugins
    }


async def test_alert_routes_need_their_scopes_and_limited_keys_see_their_robots_alerts(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    admin_key = await issue_key(pool, "ops admin", "admin")
    reader = await issue_key(pool, "night shift", "read")
    north = await issue_key(pool, "north reader", "read", "operate", fleet_tag="north")
    rule = {"name": "fault", "condition": {"kind": "status"}}
    assert_problem(await client.post("/alert-rules", json=rule, headers=bearer(reader)), ErrorKind.FORBIDDEN)
    assert_problem(await client.get("/webhooks", headers=bearer(reader)), ErrorKind.FORBIDDEN)
    assert_problem(await client.get("/alerts", headers=bearer(admin_key)), ErrorKind.FORBIDDEN)  # admin only
    created = await client.post("/alert-rules", json=rule, headers=bearer(admin_key))
    assert created.status_code == 201, created.text
    listed = await client.get("/alert-rules", headers=bearer(reader))  # reading the rules takes the read scope
    assert [r["name"] for r in listed.json()["rules"]] == ["fault"]
    assert_problem(
        await client.delete(f"/alert-rules/{created.json()['rule_id']}", headers=bearer(reader)), ErrorKind.FORBIDDEN
    )
    for robot_id, tag in (("n1", "north"), ("s1", "south")):
        await issue_robot(pool, robot_id, tag)
        await conn.execute(
            "INSERT INTO alerts (rule_id, rule_name, kind, robot_id, reason) VALUES ($1, 'fault', 'status', $2, 'x')",
            created.json()["rule_id"],
            robot_id,
        )
    ids = {a["robot_id"]: a["alert_id"] for a in (await client.get("/alerts", headers=bearer(reader))).json()["alerts"]}
    assert sorted(ids) == ["n1", "s1"]
    assert [a["robot_id"] for a in (await client.get("/alerts", headers=bearer(north))).json()["alerts"]] == ["n1"]
    assert_problem(await client.get(f"/alerts/{ids['s1']}", headers=bearer(north)), ErrorKind.UNKNOWN_ALERT)
    # Acknowledging is a write: the read scope alone does not allow it (N12).
    read_only = await client.post(f"/alerts/{ids['n1']}/acknowledge", headers=bearer(reader))
    assert "'operate'" in assert_problem(read_only, ErrorKind.FORBIDDEN)["detail"]
    assert 'scope="operate"' in read_only.headers["www-authenticate"]
    hidden = await client.post(f"/alerts/{ids['s1']}/acknowledge", headers=bearer(north))
    assert_problem(hidden, ErrorKind.UNKNOWN_ALERT)
    # In bulk too: the reader may not, and the north key leaves the south robot's alert alone.
    both = {"alert_ids": [ids["s1"], ids["n1"]]}
    assert_problem(await client.post("/alerts/acknowledge", json=both, headers=bearer(reader)), ErrorKind.FORBIDDEN)
    bulk = (await client.post("/alerts/acknowledge", json={"alert_ids": [ids["s1"]]}, headers=bearer(north))).json()
    assert bulk == {"acknowledged": [], "unchanged": [ids["s1"]]}
    assert (await client.get(f"/alerts/{ids['s1']}", headers=bearer(reader))).json()["state"] == "active"
    acknowledged = await client.post(f"/alerts/{ids['n1']}/acknowledge", json={"note": "ok"}, headers=bearer(north))
    assert acknowledged.json()["acknowledged_by"] == "north reader"


async def test_a_limited_key_stays_inside_its_part_of_the_fleet(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """N3, N5, N13: no limited admin key; a limited key sees no other part's rules and no fleet-wide metrics."""
    admin_key = await issue_key(pool, "ops admin", "admin", "read")
    await issue_robot(pool, "n1", "north")
    await issue_robot(pool, "s1", "south")
    north = await issue_key(pool, "north reader", "read", fleet_tag="north")
    # A key limited to a tag or to robots cannot be made an admin, over the API or at rest.
    for limits in ({"fleet_tag": "north"}, {"robot_ids": ["n1"]}):
        body = {"name": "north admin", "scopes": ["admin", "read"], **limits}
        refused = await client.post("/admin/keys", json=body, headers=bearer(admin_key))
        assert "admin" in assert_problem(refused, ErrorKind.BAD_PARAMETER)["detail"]
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE credentials SET scopes = '{admin}' WHERE name = 'north reader'")
    rules = {
        "everywhere": {},
        "north only": {"fleet_tag": "north"},
        "south only": {"fleet_tag": "south"},
        "of n1": {"robot_id": "n1"},
        "of s1": {"robot_id": "s1"},
    }
    ids = {}
    for name, scope in rules.items():
        rule: dict[str, Any] = {"name": name, "condition": {"kind": "status"}, **scope}
        created = await client.post("/alert-rules", json=rule, headers=bearer(admin_key))
        assert created.status_code == 201, created.text
        ids[name] = created.json()["rule_id"]
    seen = await client.get("/alert-rules", params={"limit": 2}, headers=bearer(north))
    names, cursor = [r["name"] for r in seen.json()["rules"]], seen.json()["next_cursor"]
    while cursor:  # a page may hold fewer than the limit; the cursor still reaches the end
        page = (await client.get("/alert-rules", params={"limit": 2, "cursor": cursor}, headers=bearer(north))).json()
        names, cursor = names + [r["name"] for r in page["rules"]], page["next_cursor"]
    assert names == ["everywhere", "north only", "of n1"]
    everything = await client.get("/alert-rules", headers=bearer(admin_key))
    assert len(everything.json()["rules"]) == 5
    hidden = await client.get(f"/alert-rules/{ids['of s1']}", headers=bearer(north))
    assert_problem(hidden, ErrorKind.UNKNOWN_ALERT_RULE)
    assert (await client.get(f"/alert-rules/{ids['of n1']}", headers=bearer(north))).status_code == 200
    assert_problem(await client.get("/metrics", headers=bearer(north)), ErrorKind.FORBIDDEN)
    assert (await client.get("/metrics", headers=bearer(admin_key))).status_code == 200


async def test_limited_admin_keys_lose_the_admin_scope_on_upgrade(conn: asyncpg.Connection) -> None:
    """Migration 013 took the admin scope from any limited key made before it."""
    sql = MIGRATION_013.read_text()
    await conn.execute("ALTER TABLE credentials DROP CONSTRAINT limited_keys_hold_no_admin")
    await conn.execute(
        "INSERT INTO credentials (kind, name, scopes, fleet_tag, token_hash, token_prefix)"
        " VALUES ('key', 'old north admin', '{admin,read}', 'north', 'x', 'x'),"
        " ('key', 'old admin', '{admin}', NULL, 'y', 'y')"
    )
    await conn.execute(sql)
    scopes = {row["name"]: row["scopes"] for row in await conn.fetch("SELECT name, scopes FROM credentials")}
    assert scopes == {"old admin": ["admin", "operate"], "old north admin": ["read"]}


async def test_a_flood_of_unknown_tokens_is_limited_without_looking_them_up(
    auth_settings: Settings, pool: asyncpg.Pool
) -> None:
    """N10: past FLEET_FAILED_AUTH_BURST unknown tokens from one address, 429 without a database look-up; a
    token already verified keeps working from that address."""
    key = await issue_key(pool, "ops", "read")
    settings = replace_settings(auth_settings, failed_auth_burst=5, failed_auth_per_s=1)
    async with serve_in_process(settings) as client:
        assert (await client.get("/robots", headers=bearer(key))).status_code == 200  # verified, cached
        statuses = [(await client.get("/robots", headers=bearer(f"flt_k_random{i}"))).status_code for i in range(12)]
        assert statuses == [401] * 5 + [429] * 7
        limited = await client.get("/robots", headers=bearer("flt_k_random"))
        assert "unknown tokens" in assert_problem(limited, ErrorKind.RATE_LIMITED)["detail"]
        assert (await client.get("/robots", headers=bearer(key))).status_code == 200


async def test_a_robot_is_provisioned_once_and_can_be_decommissioned(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """Provisioning a robot that has a working token is 409 (it used to issue a second live token silently).
    Decommissioning revokes its tokens, resolves its alerts, takes it out of the fleet, and keeps or deletes its
    history as asked."""
    admin_key = await issue_key(pool, "ops", "admin", "read")
    admin_headers = bearer(admin_key)
    tokens = {}
    for robot_id in ("keep-me", "drop-me"):
        provisioned = await client.post("/admin/robots", json={"robot_id": robot_id}, headers=admin_headers)
        assert provisioned.status_code == 201, provisioned.text
        tokens[robot_id] = provisioned.json()["token"]
        again = await client.post("/admin/robots", json={"robot_id": robot_id}, headers=admin_headers)
        assert "rotate" in assert_problem(again, ErrorKind.CONFLICT)["detail"]
        sent = await client.post("/telemetry/", json=reading(robot_id, NOW), headers=bearer(tokens[robot_id]))
        assert sent.status_code == 200, sent.text
        await conn.execute(
            "INSERT INTO alerts (rule_id, rule_name, kind, robot_id, reason) VALUES (NULL, 'r', 'status', $1, 'x')",
            robot_id,
        )
    before = await client.get("/robots", headers=admin_headers)
    assert sorted(r["robot_id"] for r in before.json()["robots"]) == ["drop-me", "keep-me"]
    kept = await client.delete("/admin/robots/keep-me", headers=admin_headers)
    assert kept.status_code == 204, kept.text
    dropped = await client.delete("/admin/robots/drop-me", params={"history": "delete"}, headers=admin_headers)
    assert dropped.status_code == 204, dropped.text
    for robot_id, token in tokens.items():
        refused = await client.post("/telemetry/", json=reading(robot_id, NOW), headers=bearer(token))
        assert_problem(refused, ErrorKind.UNAUTHENTICATED)
    assert (await client.get("/robots", headers=admin_headers)).json()["robots"] == []
    history = await client.get("/telemetry/keep-me", params={"since": "2000-01-01T00:00:00Z"}, headers=admin_headers)
    assert len(history.json()["readings"]) == 1
    (alert,) = (await client.get("/alerts", params={"robot_id": "keep-me"}, headers=admin_headers)).json()["alerts"]
    assert (alert["state"], alert["resolution"]) == ("resolved", "robot decommissioned")
    gone = await client.get("/telemetry/drop-me", headers=admin_headers)
    assert_problem(gone, ErrorKind.UNKNOWN_ROBOT)
    assert await conn.fetchval("SELECT count(*) FROM alerts WHERE robot_id = 'drop-me'") == 0
    assert await count_rows(conn) == (1, 1)  # keep-me's reading only
    assert_problem(await client.delete("/admin/robots/nobody", headers=admin_headers), ErrorKind.UNKNOWN_ROBOT)
    bad = await client.delete("/admin/robots/keep-me", params={"history": "shred"}, headers=admin_headers)
    assert_problem(bad, ErrorKind.BAD_PARAMETER)
    # The id can be provisioned afresh, and its history (kept) is still its own.
    again = await client.post("/admin/robots", json={"robot_id": "keep-me"}, headers=admin_headers)
    assert again.status_code == 201, again.text


async def test_look_alike_robot_ids_are_refused_at_provisioning(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """N14: an id whose UTS #39 skeleton is another robot's (Cyrillic Er for P, Greek Iota for 1) is 409, also
    against robots that reported before being provisioned."""
    admin_headers = bearer(await issue_key(pool, "ops", "admin"))
    assert (await client.post("/admin/robots", json={"robot_id": "P1"}, headers=admin_headers)).status_code == 201
    await conn.execute("INSERT INTO robots (robot_id) VALUES ('R1')")  # reported with authentication off
    for lookalike, original in (("\u04201", "P1"), ("R\u0399", "R1"), ("Rl", "R1")):
        refused = await client.post("/admin/robots", json={"robot_id": lookalike}, headers=admin_headers)
        assert f"looks like robot {original!r}" in assert_problem(refused, ErrorKind.CONFLICT)["detail"]
    assert (await client.post("/admin/robots", json={"robot_id": "R1"}, headers=admin_headers)).status_code == 201
    assert (await client.post("/admin/robots", json={"robot_id": "R2"}, headers=admin_headers)).status_code == 201
    ids = await conn.fetch("SELECT robot_id FROM robots ORDER BY robot_id")
    assert [row["robot_id"] for row in ids] == ["P1", "R1", "R2"]


async def test_the_first_reading_stored_for_a_second_wins_whoever_sent_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    """H3, as decided in docs/security.md: a gateway's reading of a robot's second, stored first, stands; the robot's
    own one is acknowledged as a duplicate. A gateway cannot claim more than FLEET_MAX_FUTURE_S ahead."""
    token = await issue_robot(pool, "H3")
    gateway = await issue_key(pool, "site gateway", "ingest")
    claimed = await client.post("/telemetry/", json=reading("H3", NOW, battery_level=11.0), headers=bearer(gateway))
    assert claimed.json() == {"accepted": 1, "duplicates": 0}
    own = await client.post("/telemetry/", json=reading("H3", NOW, battery_level=99.0), headers=bearer(token))
    assert own.json() == {"accepted": 0, "duplicates": 1}
    assert await conn.fetchval("SELECT battery_level FROM telemetry") == 11.0
    ahead = reading("H3", datetime.now(UTC) + timedelta(minutes=5))
    assert_problem(await client.post("/telemetry/", json=ahead, headers=bearer(gateway)), ErrorKind.INVALID_READING)
