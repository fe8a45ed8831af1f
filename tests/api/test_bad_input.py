"""Input that once gave 500s (found by a user and by fuzzing) gets a 400 problem of the right type."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from app.model.errors import ErrorKind
from tests.support.builders import reading
from tests.support.problems import assert_problem


@pytest.mark.parametrize(
    ("path", "params", "kind"),
    [
        ("/telemetry/R1", {"bucket": "1h", "tz": "Europe"}, ErrorKind.BAD_ZONE),  # a directory in the tz database
        ("/telemetry/R1", {"bucket": "1h", "tz": "x" * 300}, ErrorKind.BAD_ZONE),  # a file name too long
        ("/telemetry/R1", {"bucket": "1h", "tz": "../../etc/passwd"}, ErrorKind.BAD_ZONE),
        ("/fleet/daily-activity", {"day": "2026-11-27", "tz": "Europe"}, ErrorKind.BAD_ZONE),
        ("/telemetry/R1", {"tz": ""}, ErrorKind.BAD_ZONE),  # checked without bucket too (schemathesis ST201)
        ("/telemetry/R1", {"bucket": "1m\n"}, ErrorKind.BAD_BUCKET),
        ("/robots/x%00y", {}, ErrorKind.BAD_PARAMETER),
        ("/telemetry/x%00y/export.csv", {}, ErrorKind.BAD_PARAMETER),
        ("/telemetry/R1/export.csv", {"sinse": "2026-11-27T00:00:00Z"}, ErrorKind.BAD_PARAMETER),
        ("/robots", {"": "null"}, ErrorKind.BAD_PARAMETER),  # schemathesis ST201: an unnamed parameter
    ],
    ids=[
        "tz directory",
        "tz too long",
        "tz path",
        "daily tz directory",
        "empty tz without bucket",
        "bucket newline",
        "NUL id",
        "NUL export",
        "misspelt parameter",
        "unnamed parameter",
    ],
)
async def test_bad_parameters_are_400_problems(
    client: httpx.AsyncClient, conn: asyncpg.Connection, path: str, params: dict[str, str], kind: ErrorKind
) -> None:
    await client.post("/telemetry/", json=reading("R1"))
    problem = assert_problem(await client.get(path, params=params), kind)
    if "sinse" in params:
        assert "'sinse'; this operation takes: since, until" in problem["detail"], problem


@pytest.mark.parametrize(
    "body",
    [
        b'{"robot_id": "\xff\xfe", "location": {"latitude": 1, "longitude": 2}, "battery_level": 5}',
        b"[" * 1000 + b"]" * 1000,
        b"[" + b"[" * 1000 + b"]" * 1000 + b"]",
    ],
    ids=["invalid UTF-8 in a string", "nested 1000 deep", "nested inside a batch"],
)
async def test_bodies_that_are_not_json_are_400_problems(
    client: httpx.AsyncClient, conn: asyncpg.Connection, body: bytes
) -> None:
    response = await client.post("/telemetry/", content=body, headers={"content-type": "application/json"})
    assert_problem(response, ErrorKind.MALFORMED_BODY)
    assert await conn.fetchval("SELECT count(*) FROM telemetry") == 0


@pytest.mark.parametrize("path", ["/admin/robots", "/admin/keys", "/webhooks", "/alerts/acknowledge", "/alert-rules"])
async def test_every_json_body_that_is_not_json_is_the_same_problem(
    client: httpx.AsyncClient, conn: asyncpg.Connection, path: str
) -> None:
    """Whether a route decodes its body by hand or Litestar does: malformed-json, never a bare bad-parameter."""
    response = await client.post(path, content=b'{"robot_id": ', headers={"content-type": "application/json"})
    assert assert_problem(response, ErrorKind.MALFORMED_BODY)["detail"].startswith("the body is not JSON")
