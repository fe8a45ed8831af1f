"""The per-process resources that the lifespan opens and the route handlers use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request

from app.db import Pool
from app.ingest import Ingestor
from app.latest import LatestState
from app.settings import Settings

if TYPE_CHECKING:
    from app.stream import Broadcaster

_KEY = "services"


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    pool: Pool
    ingestor: Ingestor
    broadcaster: Broadcaster
    latest: LatestState


def set_services(app: Litestar, services: Services | None) -> None:
    app.state[_KEY] = services


def get_services(request: Request[Any, Any, Any]) -> Services:
    services: Services | None = request.app.state.get(_KEY)
    if services is None:
        raise RuntimeError("the application lifespan has not started")
    return services
