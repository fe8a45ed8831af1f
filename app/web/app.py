"""``create_app(settings)``: wires settings, routes, dependencies, the lifespan and error handling into one app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)

from app.platform.logs import AccessLog, access_log_for
from app.platform.settings import Settings, load_settings
from app.web import ingest_endpoint as lean_ingest
from app.web.access_log import serve_observed
from app.web.deps import DEPENDENCIES
from app.web.guard import authorize
from app.web.lifespan import SERVICES_KEY, open_services
from app.web.openapi import (
    add_body_schemas,
    add_response_examples,
    build_docs_assets_router,
    build_openapi_config,
    state_page_limits,
)
from app.web.options import allow_every_method
from app.web.params import refuse_unknown_parameters
from app.web.paths import route_on_raw_path
from app.web.problems import handle_error, problem_page
from app.web.routes.admin import AdminController
from app.web.routes.alerts import AlertRulesController, AlertsController
from app.web.routes.export import export_csv
from app.web.routes.fleet import FleetController
from app.web.routes.health import health
from app.web.routes.metrics import serve_metrics
from app.web.routes.robots import RobotsController
from app.web.routes.stream import stream_telemetry
from app.web.routes.telemetry import TelemetryController
from app.web.routes.webhooks import WebhooksController
from app.web.ui.routes import build_console_router

# On every response, errors included (Litestar's response_headers skip exception responses).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class FleetApp(Litestar):
    """Litestar routing on the raw path, so that a robot id can hold an encoded '/' (see app.web.paths), and
    every request observed (app.web.access_log)."""

    access_log: AccessLog | None = None  # create_app sets it from the settings and the log level
    cors = False  # CORS is configured: cross-origin requests to the lean ingest route go through Litestar

    async def __call__(
        self, scope: Scope | LifeSpanScope, receive: Receive | LifeSpanReceive, send: Send | LifeSpanSend
    ) -> None:
        if scope["type"] == ScopeType.HTTP:
            route_on_raw_path(cast(Scope, scope))
            send = _with_security_headers(cast(Send, send))
            serve: ASGIApp = super().__call__
            services = self.state.get(SERVICES_KEY)
            if services is not None and lean_ingest.takes(cast(HTTPScope, scope), self.cors):
                serve = partial(lean_ingest.serve_ingest, services)
            try:
                await serve_observed(serve, cast(HTTPScope, scope), cast(Receive, receive), send, self.access_log)
            finally:
                if services is not None:
                    services.in_flight.leave(cast(dict[str, Any], scope))
            return
        await super().__call__(scope, receive, send)


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
        await send(message)

    return sending


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(running: Litestar) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            running.state[SERVICES_KEY] = services
            try:
                yield
            finally:
                running.state[SERVICES_KEY] = None
                if app.access_log is not None:  # the lines of the last second
                    app.access_log.flush()

    origins = [origin.strip() for origin in settings.server.cors_origins.split(",") if origin.strip()]
    app = FleetApp(
        route_handlers=[
            health,
            stream_telemetry,
            export_csv,
            TelemetryController,
            RobotsController,
            FleetController,
            AdminController,
            AlertRulesController,
            AlertsController,
            WebhooksController,
            problem_page,
            serve_metrics,
            build_docs_assets_router(),
            build_console_router(),
        ],
        dependencies=DEPENDENCIES,
        guards=[authorize, refuse_unknown_parameters],
        lifespan=[lifespan],
        openapi_config=build_openapi_config(),
        exception_handlers={Exception: handle_error},
        before_send=[allow_every_method],
        logging_config=None,  # logging is configured once for the server (app.platform.logs), not by the framework
        request_max_body_size=settings.ingest.max_body_bytes,
        # Off unless origins are named: a browser page elsewhere cannot read or write through a visitor's session.
        cors_config=CORSConfig(allow_origins=origins, allow_headers=["Authorization", "Content-Type"])
        if origins
        else None,
    )
    add_body_schemas(app)
    add_response_examples(app)
    state_page_limits(app, settings)
    app.access_log = access_log_for(settings.server.log_format) if settings.server.access_log else None
    app.cors = bool(origins)
    return app
