"""GET /telemetry/{robot_id}: keyset pages, bounds, 404, and the body limits (413)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import msgspec
import pytest

from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from tests.support.builders import reading, series
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process

Client = httpx.AsyncClient


async def test_pages_have_no_gaps_or_overlaps(client: Client, conn: asyncpg.Connection) -> None:
    batch = series("pager", 250)
    await client.post("/telemetry/", json=batch + series("other", 30))
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/telemetry/pager", params=params)).json()
        pages += 1
        seen.extend(r["seq"] for r in page["readings"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(range(249, -1, -1))  # newest first, each reading exactly once


async def test_since_until_bound_the_range(client: Client, conn: asyncpg.Connection) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await client.post("/telemetry/", json=series("ranged", 100, start=start))
    params = {
        "since": (start + timedelta(seconds=10)).isoformat(),
        "until": (start + timedelta(seconds=20)).isoformat(),
    }
    page = (await client.get("/telemetry/ranged", params=params)).json()
    assert [r["seq"] for r in page["readings"]] == list(range(19, 9, -1))  # since inclusive, until exclusive
    assert page["next_cursor"] is None


async def test_default_limit_and_maximum(client: Client, conn: asyncpg.Connection, settings: Settings) -> None:
    maximum = settings.query.history_max_limit
    await client.post("/telemetry/", json=series("many", maximum + 5))
    default = (await client.get("/telemetry/many")).json()
    assert len(default["readings"]) == settings.query.history_default_limit
    full = (await client.get("/telemetry/many", params={"limit": str(maximum)})).json()
    assert len(full["readings"]) == maximum and full["next_cursor"] is not None
    # Above the maximum is refused, naming it: a client never gets fewer than it asked for without being told.
    above = await client.get("/telemetry/many", params={"limit": str(maximum + 1)})
    assert f"at most {maximum}" in assert_problem(above, ErrorKind.BAD_PARAMETER)["detail"]


async def test_a_reversed_range_is_400_everywhere(client: Client, conn: asyncpg.Connection) -> None:
    await client.post("/telemetry/", json=series("rev", 3))
    reversed_range = {"since": "2026-11-28T12:00:00Z", "until": "2026-11-28T11:00:00Z"}
    for path in ("/telemetry/rev", "/telemetry/rev/export.csv", "/fleet/distance"):
        assert_problem(await client.get(path, params=reversed_range), ErrorKind.BAD_RANGE)
    assert_problem(await client.get("/telemetry/rev", params={**reversed_range, "bucket": "1m"}), ErrorKind.BAD_RANGE)


async def test_a_range_before_1970_is_empty_not_reversed(client: Client, conn: asyncpg.Connection) -> None:
    # Times are clamped to 1970 (nothing is stored earlier) only after the order is checked: a forward range wholly
    # before 1970 is an empty answer, not "until must be after since".
    await client.post("/telemetry/", json=series("old", 3))
    early = {"since": "0500-01-01T00:00:00Z", "until": "0500-01-10T00:00:00Z"}
    assert (await client.get("/telemetry/old", params=early)).json()["readings"] == []
    assert (await client.get("/telemetry/old/export.csv", params=early)).text.count("\n") == 1  # the header
    assert (await client.get("/fleet/distance", params=early)).json()["robots"] == []
    wide = {"since": "0218-07-03T07:36:05Z", "until": "0553-05-24T13:37:07Z"}
    assert (await client.get("/telemetry/old", params=wide)).json()["readings"] == []
    assert_problem(await client.get("/fleet/distance", params=wide), ErrorKind.BAD_RANGE)  # over 31 days


async def test_unknown_robot_is_404(client: Client, conn: asyncpg.Connection) -> None:
    problem = assert_problem(await client.get("/telemetry/no-such-robot"), ErrorKind.UNKNOWN_ROBOT)
    assert "no-such-robot" in problem["detail"]


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"limit": "0"}, ErrorKind.BAD_PARAMETER),
        ({"limit": "ten"}, ErrorKind.BAD_PARAMETER),
        ({"since": "yesterday"}, ErrorKind.BAD_PARAMETER),
        ({"cursor": "not-a-cursor"}, ErrorKind.BAD_CURSOR),
    ],
)
async def test_bad_query_parameters_are_400(
    client: Client, conn: asyncpg.Connection, params: dict[str, str], kind: ErrorKind
) -> None:
    await client.post("/telemetry/", json=reading())
    assert_problem(await client.get("/telemetry/R2-D2", params=params), kind)


async def test_oversized_requests_are_413(settings: Settings, conn: asyncpg.Connection) -> None:
    small = replace_settings(settings, max_body_bytes=20_000, max_readings_per_request=50)
    async with serve_in_process(small) as client:
        too_many = await client.post("/telemetry/", json=series("big", 51))
        assert "at most 50" in assert_problem(too_many, ErrorKind.TOO_MANY_READINGS)["detail"]
        # Few readings, many bytes (JSON allows the padding): the byte limit alone must refuse it.
        padded = msgspec.json.encode(series("big", 10)) + b" " * 20_000
        too_large = await client.post("/telemetry/", content=padded, headers={"content-type": "application/json"})
        assert_problem(too_large, ErrorKind.BODY_TOO_LARGE)
        assert (await client.post("/telemetry/", json=series("ok", 50))).status_code == 200
    assert await conn.fetchval("SELECT count(*) FROM telemetry") == 50
