"""POST /telemetry: the one implementation of the ingest contract (media type, the credential's share, the body
within its size, acknowledgement after commit), and the plain ASGI entry most requests take, without Litestar's
per-request machinery, which was a quarter of the API's CPU per single-reading POST (benchmarks/NOTES.md).

Litestar's route (``TelemetryController.ingest``) calls the same ``ingest_readings``: it carries the OpenAPI entry
and takes the requests the plain entry hands over (browsers' cross-origin requests, when CORS is configured, so
that Litestar's CORS handling answers them, and requests with a query string, which its guard refuses).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import msgspec
from litestar.types import HTTPScope, Receive, Send

from app.model.errors import BodyTooLarge, FleetError, UnsupportedMediaType
from app.model.principal import ANONYMOUS, Principal, Scope
from app.web.access_log import READINGS_KEY, header_value
from app.web.guard import admit
from app.web.lifespan import Services
from app.web.problems import BODY_TOO_LARGE_DETAIL, PROBLEM_MEDIA_TYPE, problem_for

PATHS = frozenset({"/telemetry", "/telemetry/"})
ROUTE_TEMPLATE = "/telemetry"  # as Litestar names the route, for the access line and the metrics' labels
JSON_MEDIA_TYPE = "application/json"
_JSON = JSON_MEDIA_TYPE.encode()
_PROBLEM = PROBLEM_MEDIA_TYPE.encode()
_encode = msgspec.json.Encoder().encode


def takes(scope: HTTPScope, cors: bool) -> bool:
    """Whether this endpoint answers the request: a POST to /telemetry without a query string (the route takes no
    parameters; Litestar's guard refuses unknown ones), unless CORS must see it."""
    return (
        scope["method"] == "POST"
        and scope["path"] in PATHS
        and not scope["query_string"]
        and not (cors and header_value(scope["headers"], b"origin") is not None)
    )


async def serve_ingest(services: Services, scope: HTTPScope, receive: Receive, send: Send) -> None:
    scope["path_template"] = ROUTE_TEMPLATE  # read by app.web.access_log
    headers: list[tuple[bytes, bytes]] = [(b"content-type", _JSON)]
    try:
        status, body = 200, await _ingest(services, scope, receive)
    except _Disconnected:
        return  # the client left before its body arrived: nothing was queued, nobody to answer
    except Exception as exc:  # every failure becomes a problem, as Litestar's exception handler makes it
        problem, extra = problem_for(exc, "POST", scope["path"])
        status, body = problem.status, _encode(problem)
        headers = [(b"content-type", _PROBLEM)]
        headers += [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _ingest(services: Services, scope: HTTPScope, receive: Receive) -> bytes:
    writer = await admit(services, cast(dict[str, Any], scope), Scope.INGEST)
    return await ingest_readings(services, writer, scope, receive)


async def ingest_readings(services: Services, writer: Principal, scope: HTTPScope, receive: Receive) -> bytes:
    """The contract once the writer is admitted: its readings stored, the answer encoded after their commit."""
    check_media_type(_media_type(scope["headers"]).decode("latin-1"), writer)
    ingestor, limit = services.ingestor, services.settings.ingest.max_body_bytes
    if writer is ANONYMOUS:  # authentication off: no client to tell apart
        result = await ingestor.ingest_body(await _read_body(scope, receive, limit), writer)
    else:
        # Checked before the body is read: a client past its share costs the process almost nothing.
        with services.limits.ingest_limiter_for(writer).hold(writer.credential_id):
            result = await ingestor.ingest_body(await _read_body(scope, receive, limit), writer)
    scope.setdefault("state", {})[READINGS_KEY] = result.accepted + result.duplicates
    return _encode(result)


def check_media_type(media_type: str, writer: Principal) -> None:
    """Readings come as application/json: no form or text body, so a page elsewhere cannot post them with a
    visitor's credentials. With authentication off (the seed's mode, trusted networks only) there are no
    credentials to misuse, and the seed's clients (``curl -d``, ``urllib``) send no JSON type: any type is read
    as JSON, as the seed's own API did."""
    if media_type != JSON_MEDIA_TYPE and writer is not ANONYMOUS:
        raise UnsupportedMediaType("send the readings as Content-Type: application/json")


class _Disconnected(Exception):
    pass


async def _read_body(scope: HTTPScope, receive: Receive, limit: int) -> bytes:
    declared = header_value(scope["headers"], b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = cast(bytes, message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> FleetError:
    return BodyTooLarge(BODY_TOO_LARGE_DETAIL)  # Litestar's route says the same


def _media_type(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    value = header_value(headers, b"content-type") or b""
    return value.partition(b";")[0].strip().lower()
