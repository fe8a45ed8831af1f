"""The OpenAPI document and Swagger UI at /docs, with schemas generated from the msgspec structs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import msgspec
from litestar import Litestar, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.static_files import create_static_files_router

from app import __version__
from app.alerts.payloads import Acknowledgement, BulkAcknowledgement, NewWebhook
from app.auth.provisioning import NewKey, NewRobot
from app.platform.settings import Settings
from app.telemetry.decoding import TELEMETRY_BODY
from app.telemetry.fanout import StreamedReading
from app.web.examples import example_for

_REF_TEMPLATE = "#/components/schemas/{name}"
# The POST body is decoded by hand (one reading or an array, every bad item reported), so Litestar cannot infer
# its schema; msgspec generates it from the same types the decoder uses.
# Litestar also drops the constraints of list items (list[Annotated[str, Meta(...)]]) from the admin bodies, so
# their components are msgspec's too: the document then says what the server checks.
(_BODY_SCHEMA, _STREAMED_SCHEMA, *_), _BODY_COMPONENTS = msgspec.json.schema_components(
    [TELEMETRY_BODY, StreamedReading, NewRobot, NewKey, NewWebhook, Acknowledgement, BulkAcknowledgement],
    ref_template=_REF_TEMPLATE,
)
STREAM_EXAMPLE = (
    ": subscribed\nretry: 2000\n\n"
    "event: reading\nid: lM8AGBxqAq2lUjItRDLPABgcagKt\n"
    'data: {"timestamp":"2026-11-28T10:15:00Z","location":{"latitude":37.1,"longitude":-122.3},'
    '"battery_level":87.5,"battery_voltage":null,"status":"moving","seq":1041,"heading":null,"speed":null,'
    '"altitude":null,"accuracy":null,"pose":null,"fields":null,"robot_id":"R2-D2"}\n\n'
    ": heartbeat\n\n"
)

SEED_READING = {
    "robot_id": "R2-D2",
    "location": {"latitude": 37.1, "longitude": -122.3},
    "battery_level": 87.5,
}
FULL_READING = {
    **SEED_READING,
    "timestamp": "2026-11-28T10:15:00Z",
    "battery_voltage": 24.6,
    "status": "moving",
    "seq": 1041,
    "heading": 87.0,
    "speed": 1.4,
    "altitude": 12.5,
    "accuracy": 0.8,
    "fields": {"motor_temp_c": 41.5, "estop": False, "firmware": "2.4.1"},
}
INDOOR_READING = {
    "robot_id": "/amr_3",
    "pose": {"frame": "map", "x": 12.4, "y": -3.1, "yaw": 1.57},
    "battery_level": 64.0,
    "timestamp": {"sec": 1795860900, "nanosec": 250000000},
}


@dataclass
class TelemetryBodyOperation(Operation):
    """An operation whose request body is a reading or an array of readings."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="One reading, or an array of readings stored all-or-nothing.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=cast(Schema, _BODY_SCHEMA),
                    examples=cast(
                        Any,
                        {
                            "seed": {"summary": "The original payload", "value": SEED_READING},
                            "full": {"summary": "Every optional field", "value": FULL_READING},
                            "indoor": {"summary": "A local pose and a ROS time", "value": INDOOR_READING},
                            "batch": {"summary": "A batch", "value": [SEED_READING, FULL_READING]},
                        },
                    ),
                )
            },
        )


def json_body_operation(
    struct: type[msgspec.Struct], description: str, extra: dict[str, dict[str, Any]] | None = None
) -> type[Operation]:
    """An operation class for a route that decodes its JSON body by hand (to answer 422 with the field at
    fault): the body's schema is msgspec's; its components travel with the operation class, and add_body_schemas
    puts them in the document when the app is built (nothing is registered at import). ``extra`` adds rules
    msgspec cannot derive to components, by name (such as two fields that exclude each other)."""
    (schema,), components = msgspec.json.schema_components([struct], ref_template=_REF_TEMPLATE)
    for name, rules in (extra or {}).items():
        components[name].update(rules)
    example = example_for(struct.__name__)

    @dataclass
    class JsonBodyOperation(Operation):
        body_components: ClassVar[dict[str, Any]] = components

        def __post_init__(self) -> None:
            media = OpenAPIMediaType(schema=cast(Schema, schema))
            if example is not None:
                media.examples = cast(Any, {"example": {"summary": struct.__name__, "value": example}})
            self.request_body = RequestBody(required=True, description=description, content={"application/json": media})

    return JsonBodyOperation


TAG_DESCRIPTIONS = {
    "telemetry": "Store readings (one or a batch, acknowledged after commit) and read a robot's history.",
    "fleet state": "Each robot's latest state; liveness by the server's clock.",
    "fleet questions": "Questions about the whole fleet at once: low battery, offline, stationary, distance, activity.",
    "live and export": "Readings as they are committed (Server-Sent Events), and a robot's range as CSV.",
    "alerts": "Alert rules (admin), the alerts they open (read, acknowledge), webhooks and their delivery log (admin).",
    "admin": "Provision robots and their tokens, create operator keys, rotate and revoke (admin scope).",
    "health": "Whether the service and its database answer; whether authentication is on.",
    "problem types": "What each problem `type` of an error response means.",
}


# Swagger UI's files, pinned in package-lock.json and installed by scripts/bootstrap.sh, served by the API itself:
# /docs works on a site without internet, and no page of ours loads code from elsewhere.
ASSETS_DIR = Path(__file__).resolve().parents[2] / "node_modules" / "swagger-ui-dist"
ASSETS_PATH = "/docs/assets"


def build_docs_assets_router() -> Router:
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"Swagger UI assets missing in {ASSETS_DIR}: run `make deps` (scripts/bootstrap.sh)")
    return create_static_files_router(
        path=ASSETS_PATH, directories=[ASSETS_DIR], name="docs-assets", cache_control=CacheControlHeader(max_age=86400)
    )


@dataclass
class StreamOperation(Operation):
    """The live stream's 200: Server-Sent Events, each ``reading`` event's data a StreamedReading."""

    def __post_init__(self) -> None:
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description=(
                    "A `text/event-stream`. `event: reading` carries one StreamedReading (JSON, see "
                    "`#/components/schemas/StreamedReading`), sent after its commit, with an `id:` to resume "
                    "from (`Last-Event-ID`); `event: gap` says a resume left readings out (read the history); "
                    "`event: overflow` ends the stream of a subscriber that fell too far behind; comment lines "
                    "`: subscribed` and `: heartbeat` (every 15 s) keep proxies from closing it."
                ),
                content={
                    "text/event-stream": OpenAPIMediaType(
                        schema=Schema(type=OpenAPIType.STRING, description="Server-Sent Events"),
                        example=STREAM_EXAMPLE,
                    )
                },
            ),
        }


def build_openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Fleet telemetry",
        version=__version__,
        description=(
            "Ingest and query robot-fleet telemetry stored in TimescaleDB. Every route but `GET /`, `/docs` and "
            "`/problems` takes a credential as `Authorization: Bearer <token>`: a robot's token (writes its own "
            "readings) or an operator key with scopes (read, stream, export, ingest, admin)."
        ),
        path="/docs",
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
            )
        ],
        # Swagger UI shows an Authorize button for this scheme; the token never goes into a URL.
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A robot token (flt_r_...) or an operator key (flt_k_...).",
                )
            }
        ),
        security=[{"bearer": []}],
        tags=[Tag(name=name, description=description) for name, description in TAG_DESCRIPTIONS.items()],
    )


# Lists the database answers page by page take FLEET_QUERY_HISTORY_MAX_LIMIT; the others FLEET_QUERY_LIST_MAX_LIMIT
# (app.web.pages).
KEYSET_PAGED = frozenset({"getRobotHistory", "listAlerts", "listAlertRules", "listWebhookDeliveries"})


def state_page_limits(app: Litestar, settings: Settings) -> None:
    """Write this server's maximum ``limit`` into every paged operation, so the document states what a 400
    would refuse (the maxima are settings, known only once the app is built)."""
    for path_item in (app.openapi_schema.paths or {}).values():
        operation = path_item.get
        if operation is None:
            continue
        for parameter in operation.parameters or ():
            if isinstance(parameter, Reference) or parameter.name != "limit":
                continue
            query = settings.query
            maximum = query.history_max_limit if operation.operation_id in KEYSET_PAGED else query.list_max_limit
            if isinstance(parameter.schema, Schema):
                for option in parameter.schema.one_of or [parameter.schema]:
                    if isinstance(option, Schema) and option.type == OpenAPIType.INTEGER:
                        option.maximum = maximum


def add_body_schemas(app: Litestar) -> None:
    """Register the hand-decoded bodies' component schemas (Litestar rebuilds components from handlers only): the
    shared ones, and those each route's operation class carries."""
    document = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas.update(cast(dict[str, Schema], _BODY_COMPONENTS))
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            carried = getattr(handler.operation_class, "body_components", None)
            if carried:
                document.components.schemas.update(cast(dict[str, Schema], carried))


CSV_EXAMPLE = (
    "robot_id,timestamp,latitude,longitude,battery_level,battery_voltage,status,seq,heading,speed,altitude,"
    "accuracy,pose_frame,pose_x,pose_y,pose_yaw,fields\n"
    "R2-D2,2026-11-28 10:15:00+00,37.1,-122.3,87.5,24.6,moving,1041,87,1.4,,0.8,,,,,\n"
)

METRICS_EXAMPLE = (
    "# HELP fleet_readings_accepted_total Readings stored (acknowledged after commit).\n"
    "# TYPE fleet_readings_accepted_total counter\n"
    "fleet_readings_accepted_total 1.234567e+06\n"
)
HTML_EXAMPLE = "<!doctype html><html lang=en><title>Invalid reading</title><h1>Invalid reading</h1>...</html>"


def _example_of(media: OpenAPIMediaType) -> Any:
    schema = media.schema
    if isinstance(schema, Reference):
        return example_for(schema.ref.rsplit("/", 1)[-1])
    if isinstance(schema, Schema) and schema.type == OpenAPIType.ARRAY and isinstance(schema.items, Reference):
        item = example_for(schema.items.ref.rsplit("/", 1)[-1])
        return None if item is None else msgspec.Raw(b"[" + bytes(item) + b"]")
    return None


def add_response_examples(app: Litestar) -> None:
    """Give every response body in the document an example (app.web.examples), where Litestar gave none; a
    response of one of several shapes gets one example per shape."""
    for path_item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            for response in (operation.responses or {}).values():
                for media_type, media in (getattr(response, "content", None) or {}).items():
                    if media.example is not None or media.examples:
                        continue
                    if media_type.startswith("text/csv"):
                        media.example = CSV_EXAMPLE
                    elif media_type.startswith("text/html"):
                        media.example = HTML_EXAMPLE
                    elif media_type.startswith("text/plain"):
                        media.example = METRICS_EXAMPLE
                    elif isinstance(media.schema, Schema) and media.schema.one_of:
                        media.examples = {
                            ref.ref.rsplit("/", 1)[-1]: Example(value=example_for(ref.ref.rsplit("/", 1)[-1]))
                            for ref in media.schema.one_of
                            if isinstance(ref, Reference)
                        }
                    else:
                        media.example = _example_of(media)
