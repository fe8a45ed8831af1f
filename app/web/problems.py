"""RFC 9457 problem details: the one place an error becomes an HTTP status and a problem body.

Domain errors (``app.model.errors``), Litestar's own refusals, and anything unexpected all leave through here.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from typing import Annotated, Any, cast

import asyncpg
import msgspec
from litestar import MediaType, Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException, SerializationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import PathParameter

from app.model.errors import ErrorKind, FleetError
from app.model.payloads import FieldError, Problem
from app.platform.problems import PROBLEMS, problem_of, problem_type

PROBLEM_MEDIA_TYPE = "application/problem+json"
QUERY_RETRY_AFTER_S = 5
BODY_TOO_LARGE_DETAIL = "the body is larger than this server takes (FLEET_MAX_BODY_BYTES)"

log = logging.getLogger(__name__)


# Litestar's own refusals (routing, parameter validation, body size), by status.
_HTTP_KINDS = {
    400: ErrorKind.BAD_PARAMETER,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.METHOD_NOT_ALLOWED,
    413: ErrorKind.BODY_TOO_LARGE,
}


# What every route behind a credential can also answer.
AUTH_ERRORS = (ErrorKind.UNAUTHENTICATED, ErrorKind.FORBIDDEN)


def _as_response(problem: Problem, headers: dict[str, str] | None) -> Response[Problem]:
    return Response(problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The app's one exception handler."""
    return _as_response(*problem_for(exc, request.method, request.url.path))


def problem_for(exc: Exception, method: str, path: str) -> tuple[Problem, dict[str, str] | None]:
    """The one mapping of an exception to a problem and its headers, for Litestar's routes and the lean ingest
    route alike; an unexpected error is logged (with the request id) and answered without internals."""
    if isinstance(exc, FleetError):
        return problem_of(exc.kind, exc.detail, exc.errors), exc.headers or None
    if isinstance(exc, HTTPException) and isinstance(exc.__cause__, SerializationException):
        # A body Litestar decodes itself (JSONBody) that is not JSON at all: the same problem as a hand-decoded one.
        return problem_of(ErrorKind.MALFORMED_BODY, f"the body is not JSON: {exc.detail}"), None
    if isinstance(exc, HTTPException):
        kind = _HTTP_KINDS.get(exc.status_code)
        if kind is not None:
            detail = BODY_TOO_LARGE_DETAIL if kind is ErrorKind.BODY_TOO_LARGE else exc.detail
            return problem_of(kind, detail, _framework_errors(exc.extra)), exc.headers
    if isinstance(exc, asyncpg.UntranslatableCharacterError | asyncpg.CharacterNotInRepertoireError):
        # PostgreSQL's text holds no NUL; the ingest path refuses it before queueing (app.telemetry.decoding).
        return problem_of(ErrorKind.BAD_PARAMETER, "text may not contain U+0000 (NUL)"), None
    if isinstance(exc, OverflowError | asyncpg.DataError):
        # A date or number so extreme that arithmetic on it overflows, here or in PostgreSQL: the input's fault.
        return problem_of(ErrorKind.OUT_OF_RANGE, "a parameter is outside the range this API can compute with"), None
    if isinstance(exc, TimeoutError):
        # A statement that ran past FLEET_QUERY_TIMEOUT_MS: the server's limit, not the client's mistake.
        detail = "the database did not answer in time; narrow the range or retry later"
        return problem_of(ErrorKind.QUERY_TIMEOUT, detail), {"Retry-After": str(QUERY_RETRY_AFTER_S)}
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc.__context__, Exception):
        # Leaving a transaction fails too when asyncpg closed its connection on a timeout ("connection is closed"):
        # the answer owed is the first failure's. Seen on a loaded machine: a 20 ms query timeout gave a 500.
        return problem_for(exc.__context__, method, path)
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return problem_of(ErrorKind.INTERNAL, "the service failed to answer; the failure is logged"), None


def _framework_errors(extra: Any) -> list[FieldError] | None:
    if not isinstance(extra, list) or not extra:
        return None
    return [
        FieldError(field=str(item.get("key", "")), message=str(item.get("message", "")))
        if isinstance(item, dict)
        else FieldError(field="", message=str(item))
        for item in extra
    ]


def problem_responses(*kinds: ErrorKind) -> dict[int, ResponseSpec]:
    """The error responses a route can give, for /docs; kinds sharing a status share one entry."""
    meanings: dict[int, list[str]] = {}
    examples: dict[int, list[Example]] = {}
    for kind in _with_defaults(kinds):
        spec = PROBLEMS[kind]
        meanings.setdefault(spec.status, []).append(f"{spec.meaning} (`{kind.value}`)")
        examples.setdefault(spec.status, []).append(Example(summary=kind.value, value=_example_problem(kind)))
    return {
        status: ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            description="; ".join(texts),
            media_type=PROBLEM_MEDIA_TYPE,
            examples=examples[status],
        )
        for status, texts in sorted(meanings.items())
    }


def _example_problem(kind: ErrorKind) -> dict[str, Any]:
    spec = PROBLEMS[kind]
    errors = (
        [FieldError("battery_level", "Expected `float` <= 100.0", index=3)] if kind.value == "invalid-reading" else None
    )
    problem = Problem(spec.status, spec.title, f"{spec.meaning}.", problem_type(kind), errors)
    return cast(dict[str, Any], msgspec.to_builtins(problem))


def _with_defaults(kinds: Iterable[ErrorKind]) -> list[ErrorKind]:
    """Every route can also refuse a bad parameter and fail unexpectedly."""
    return list(dict.fromkeys([*kinds, ErrorKind.BAD_PARAMETER, ErrorKind.INTERNAL]))


_KINDS_BY_SLUG = {kind.value: kind for kind in PROBLEMS}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>HTTP status {status}.</p><p>{meaning}.</p>
<p>The response body is an RFC 9457 problem: <code>type</code>, <code>title</code>, <code>status</code>,
<code>detail</code>, and for a bad body <code>errors</code>, one entry per problem with its <code>field</code>
and, in a batch, its <code>index</code>.</p></body></html>
"""


@get(
    "/problems/{slug:str}",
    operation_id="getProblemType",
    security=[{}],  # public: no credential needed
    tags=["problem types"],
    summary="What a problem type means",
    media_type=MediaType.HTML,
    responses=problem_responses(ErrorKind.NOT_FOUND),
)
async def problem_page(
    slug: Annotated[str, PathParameter(description="The problem type, e.g. invalid-reading.")],
) -> str:
    kind = _KINDS_BY_SLUG.get(slug)
    if kind is None:
        raise NotFoundException(f"no problem type {slug!r}")
    spec = PROBLEMS[kind]
    return _PAGE.format(title=html.escape(spec.title), status=spec.status, meaning=html.escape(spec.meaning))
