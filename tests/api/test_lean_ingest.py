"""The lean ingest route (app.web.ingest_endpoint) keeps the contract of Litestar's route, answer for answer.

With CORS configured, a request that carries an Origin header goes through Litestar's route instead; so each
request below is sent both ways, and the two answers must agree in status, body and headers.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from tests.support.auth import bearer, issue_key, issue_robot
from tests.support.builders import reading
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process

ORIGIN = "https://ops.example"
# Headers that differ between any two answers, or only say which route answered (CORS's access-control-*).
UNCOMPARED = {"x-request-id", "vary", "date", "content-length"}


@pytest.fixture
def cors_settings(settings: Settings) -> Settings:
    return replace_settings(settings, auth="on", cors_origins=ORIGIN, max_body_bytes=20_000)


def _answer(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in UNCOMPARED and not k.startswith("access-control")}
    return response.status_code, response.json(), headers


async def test_both_routes_answer_alike(cors_settings: Settings, pool: asyncpg.Pool) -> None:
    token = await issue_robot(pool, "L1")
    reader = await issue_key(pool, "reader", "read")
    json_type = {"content-type": "application/json"}
    cases: list[tuple[str, dict[str, str], bytes, ErrorKind | None]] = [
        ("stored", bearer(token), msgspec.json.encode(reading("L1")), None),
        ("a batch", bearer(token), msgspec.json.encode([reading("L1"), reading("L1")]), None),
        ("no credential", {}, msgspec.json.encode(reading("L1")), ErrorKind.UNAUTHENTICATED),
        ("a read key", bearer(reader), msgspec.json.encode(reading("L1")), ErrorKind.FORBIDDEN),
        ("another robot", bearer(token), msgspec.json.encode(reading("L2")), ErrorKind.FORBIDDEN),
        (
            "invalid",
            bearer(token),
            msgspec.json.encode({**reading("L1"), "battery_level": 101}),
            ErrorKind.INVALID_READING,
        ),
        ("not JSON", bearer(token), b"{", ErrorKind.MALFORMED_BODY),
        ("too large", bearer(token), msgspec.json.encode(reading("L1")) + b" " * 20_000, ErrorKind.BODY_TOO_LARGE),
    ]
    async with serve_in_process(cors_settings) as client:
        for name, headers, body, kind in cases:
            lean = await client.post("/telemetry", content=body, headers=headers | json_type)
            framework = await client.post("/telemetry", content=body, headers=headers | json_type | {"origin": ORIGIN})
            assert framework.headers["access-control-allow-origin"] == ORIGIN, name  # Litestar's route answered
            assert "access-control-allow-origin" not in lean.headers, name
            if kind is not None:
                assert_problem(lean, kind)
            assert _answer(lean) == _answer(framework), name
        text = await client.post("/telemetry", content=b"{}", headers=bearer(token) | {"content-type": "text/plain"})
        assert_problem(text, ErrorKind.UNSUPPORTED_MEDIA_TYPE)
        # The route takes no parameters: one given is refused, as on every route (Litestar's guard answers it).
        stray = await client.post("/telemetry?dry_run=1", json=reading("L1"), headers=bearer(token))
        assert "'dry_run'" in assert_problem(stray, ErrorKind.BAD_PARAMETER)["detail"]
    # Without timestamps, each reading is stamped on arrival: "stored" twice and "a batch" twice, nothing else.
    assert await pool.fetchval("SELECT count(*) FROM telemetry") == 6


async def test_the_route_is_still_in_the_document(cors_settings: Settings) -> None:
    async with serve_in_process(cors_settings) as client:
        document = (await client.get("/docs/openapi.json")).json()
    assert document["paths"]["/telemetry"]["post"]["operationId"] == "ingestReadings"


SEED_CONTENT_TYPES = ("application/x-www-form-urlencoded", "text/plain", None)  # curl -d, a text body, urllib


async def test_with_authentication_off_any_content_type_is_read_as_json(settings: Settings, pool: asyncpg.Pool) -> None:
    """The seed's clients send no JSON content type: in the seed's mode (authentication off) their readings are
    stored, through both routes; a form body is still not JSON. With authentication on, 415 on both routes."""
    body = msgspec.json.encode(reading("S1"))
    async with serve_in_process(replace_settings(settings, auth="off", cors_origins=ORIGIN)) as client:
        for content_type in SEED_CONTENT_TYPES:
            headers = {} if content_type is None else {"content-type": content_type}
            lean = await client.post("/telemetry", content=body, headers=headers)
            framework = await client.post("/telemetry", content=body, headers=headers | {"origin": ORIGIN})
            assert (lean.status_code, framework.status_code) == (200, 200), content_type
            assert lean.json() == framework.json() == {"accepted": 1, "duplicates": 0}
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert_problem(await client.post("/telemetry", content=b"robot_id=S1", headers=form), ErrorKind.MALFORMED_BODY)
    assert await pool.fetchval("SELECT count(*) FROM telemetry") == 2 * len(SEED_CONTENT_TYPES)
    token = await issue_robot(pool, "S1")
    async with serve_in_process(replace_settings(settings, auth="on", cors_origins=ORIGIN)) as client:
        for content_type in SEED_CONTENT_TYPES:
            headers = bearer(token) | ({} if content_type is None else {"content-type": content_type})
            lean = await client.post("/telemetry", content=body, headers=headers)
            framework = await client.post("/telemetry", content=body, headers=headers | {"origin": ORIGIN})
            assert_problem(lean, ErrorKind.UNSUPPORTED_MEDIA_TYPE)
            assert _answer(lean) == _answer(framework), content_type
    assert await pool.fetchval("SELECT count(*) FROM telemetry") == 2 * len(SEED_CONTENT_TYPES)
