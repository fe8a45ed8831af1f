"""What route handlers receive by name, through Litestar's dependency injection, from the running services."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from app.auth.authenticator import Authenticator
from app.model.payloads import Storage
from app.model.principal import Principal
from app.platform.pool import Pool
from app.platform.settings import Settings
from app.telemetry.fanout import Broadcaster
from app.telemetry.latest import LatestState
from app.web.guard import provide_principal
from app.web.lifespan import SERVICES_KEY, Limits, Services

# What a handler parameter is annotated with to receive the service of that name.
SettingsDep = NamedDependency[Settings]
PoolDep = NamedDependency[Pool]
ControlPoolDep = NamedDependency[Pool]
LimitsDep = NamedDependency[Limits]
LatestDep = NamedDependency[LatestState]
BroadcasterDep = NamedDependency[Broadcaster]
AuthenticatorDep = NamedDependency[Authenticator]
PrincipalDep = NamedDependency[Principal]
StorageDep = NamedDependency[Storage]


def _services(state: State) -> Services:
    services: Services | None = state.get(SERVICES_KEY)
    if services is None:
        raise RuntimeError("the application lifespan has not started")
    return services


def provide_settings(state: State) -> Settings:
    return _services(state).settings


def provide_pool(state: State) -> Pool:
    return _services(state).pool


def provide_control_pool(state: State) -> Pool:
    return _services(state).control_pool


def provide_limits(state: State) -> Limits:
    return _services(state).limits


def provide_latest(state: State) -> LatestState:
    return _services(state).latest


def provide_authenticator(state: State) -> Authenticator:
    return _services(state).authenticator


def services_of(request: Request[Any, Any, Any]) -> Services:
    """The ingest route takes the services whole, as the plain ingest entry it shares its code with does; every
    other route takes its services as NamedDependency parameters."""
    return _services(request.app.state)


def provide_broadcaster(state: State) -> Broadcaster:
    return _services(state).broadcaster


def provide_storage(state: State) -> Storage:
    return _services(state).storage


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "pool": Provide(provide_pool, sync_to_thread=False),
    "control_pool": Provide(provide_control_pool, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
    "latest": Provide(provide_latest, sync_to_thread=False),
    "broadcaster": Provide(provide_broadcaster, sync_to_thread=False),
    "authenticator": Provide(provide_authenticator, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "storage": Provide(provide_storage, sync_to_thread=False),
}
