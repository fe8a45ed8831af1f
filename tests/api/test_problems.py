"""Every error leaves as an RFC 9457 problem with a type: the framework's own, the unexpected, and in /docs."""

from __future__ import annotations

import logging

import asyncpg
import httpx
import msgspec
import pytest
from litestar import get

from app.model.errors import ErrorKind
from app.platform.problems import PROBLEMS, problem_type
from app.platform.settings import Settings
from app.web.app import create_app
from app.web.examples import EXAMPLES
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process


async def test_framework_refusals_are_typed_problems(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    assert_problem(await client.get("/no/such/route"), ErrorKind.NOT_FOUND)
    assert_problem(await client.delete("/robots"), ErrorKind.METHOD_NOT_ALLOWED)
    assert_problem(await client.get("/robots", params={"online": "perhaps"}), ErrorKind.BAD_PARAMETER)


@get("/test-only/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_unexpected_error_is_a_logged_500_without_internals(
    settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = create_app

    def with_boom(settings: Settings) -> object:
        app = original(settings)
        app.register(boom)
        return app

    monkeypatch.setattr("tests.support.servers.create_app", with_boom)
    # Litestar's logging set-up replaces the root handlers (and so pytest's caplog): listen on the logger itself.
    collect, logger = Collect(), logging.getLogger("app.web.problems")
    logger.addHandler(collect)
    try:
        async with serve_in_process(settings) as client:
            response = await client.get("/test-only/boom")
    finally:
        logger.removeHandler(collect)
    problem = assert_problem(response, ErrorKind.INTERNAL)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert problem["detail"] == "the service failed to answer; the failure is logged"
    [record] = collect.records
    assert "/test-only/boom" in record.getMessage() and record.exc_info is not None


def test_every_documented_error_is_a_problem(settings: Settings) -> None:
    document = create_app(settings).openapi_schema.to_schema()
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or path == "/":  # health answers 503 with its own body
                    continue
                assert list(response["content"]) == ["application/problem+json"], (path, method, status)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
                checked += 1
    assert checked > 20


async def test_every_problem_type_is_a_page_the_api_serves(client: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    for kind, spec in PROBLEMS.items():
        page = await client.get(problem_type(kind))  # a reference relative to the API itself
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), kind
        assert spec.title in page.text and str(spec.status) in page.text
    assert_problem(await client.get("/problems/no-such-thing"), ErrorKind.NOT_FOUND)


def test_the_stream_is_documented_as_server_sent_events(settings: Settings) -> None:
    document = create_app(settings).openapi_schema.to_schema()
    ok = document["paths"]["/telemetry/stream"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    assert "event: reading" in ok["content"]["text/event-stream"]["example"]
    assert "StreamedReading" in document["components"]["schemas"]
    assert all(op.get("operationId") for path in document["paths"].values() for op in path.values())


async def test_every_response_has_a_description_and_a_valid_example(client: httpx.AsyncClient) -> None:
    document = (await client.get("/docs/openapi.json")).json()  # as a client generator reads it
    checked, validated = 0, set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                where = (path, method, status)
                assert response.get("description"), where
                for media_type, media in response.get("content", {}).items():
                    assert media.get("example") is not None or media.get("examples"), (*where, media_type)
                    # Each example decodes as the very type the route returns.
                    examples = {name: e["value"] for name, e in media.get("examples", {}).items()}
                    ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get("$ref")
                    if ref and "example" in media:
                        examples[ref.rsplit("/", 1)[-1]] = media["example"]
                    for name, example in examples.items():
                        if name in EXAMPLES:
                            for value in example if isinstance(example, list) else [example]:
                                msgspec.convert(value, type(EXAMPLES[name]))
                                validated.add(name)
                    checked += 1
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for example in body.get("examples", {}).values():  # a hand-decoded body's example (NewRule)
                name = example.get("summary")
                if name in EXAMPLES:
                    msgspec.convert(example["value"], type(EXAMPLES[name]))
                    validated.add(name)
    assert checked > 60
    assert validated == set(EXAMPLES) - {"StreamedReading"}  # the stream's example is event-stream text


async def test_no_optional_parameter_carries_an_example(client: httpx.AsyncClient) -> None:
    """Swagger UI's "Try it out" pre-fills a parameter's example and sends it: an example on an optional filter
    made GET /robots answer [] (only charging robots below 20 %)."""
    document = (await client.get("/docs/openapi.json")).json()
    prefilled = [
        (path, method, parameter["name"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if not parameter.get("required") and ("example" in parameter or "examples" in parameter)
    ]
    assert prefilled == []
