"""Every route's credential check: a guard on the whole app reads the route's required scope from its ``opt``.

Routes without a ``scope`` are public (health, /docs); ``tests/api/test_auth.py`` lists them, so a new
route cannot become public by omission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.model.errors import Forbidden
from app.model.principal import ANONYMOUS, Principal, Scope
from app.web.access_log import header_value
from app.web.lifespan import SERVICES_KEY, Services

SCOPE_OPT = "scope"
PRINCIPAL_STATE = "principal"


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    scope: Scope | None = handler.opt.get(SCOPE_OPT)
    if scope is None:
        return
    services: Services = connection.app.state[SERVICES_KEY]
    connection.state[PRINCIPAL_STATE] = await admit(services, cast(dict[str, Any], connection.scope), scope)


async def admit(services: Services, request: dict[str, Any], scope: Scope) -> Principal:
    """The principal of ``request`` (an ASGI scope), if its credential is valid, within its rate and its requests
    in flight, and holds ``scope`` (the guard's check, shared with the lean ingest route)."""
    client = request.get("client")
    peer = client[0] if client else ""
    principal = await services.authenticator.authenticate(_authorization(request["headers"]), peer)
    if principal is not ANONYMOUS:
        limits = services.limits
        (limits.robot_rate if principal.robot_id is not None else limits.key_rate).take(principal.credential_id)
        services.in_flight.enter(request, principal)
    if scope is Scope.INGEST and principal.robot_id is not None:
        pass  # a robot's token writes its own readings: the ingest use case checks each one
    elif scope not in principal.scopes:
        principal.require(scope)  # raises Forbidden, naming the scope
    return principal


def _authorization(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    value = header_value(headers, b"authorization")
    return None if value is None else value.decode("latin-1")


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal | None = request.state.get(PRINCIPAL_STATE)
    if principal is None:  # a route without a scope asked for a principal: a wiring fault, not the client's
        raise Forbidden("this route has no credential check")
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)
