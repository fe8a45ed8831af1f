"""GET /metrics: Prometheus exposition of the whole server (every worker process), for a read-scope credential."""

from __future__ import annotations

from litestar import Response, get

from app.model.principal import Scope
from app.platform.metrics import render_metrics
from app.web.deps import PrincipalDep
from app.web.guard import SCOPE_OPT
from app.web.problems import AUTH_ERRORS, problem_responses


@get(
    "/metrics",
    operation_id="getMetrics",
    tags=["health"],
    opt={SCOPE_OPT: Scope.READ},
    summary="Prometheus metrics",
    description=(
        "Ingest (accepted, duplicates, rejected by problem type, flush sizes and latency, queued rows), HTTP "
        "requests by route template and status with latency, database pools, stream subscribers and database "
        "reachability, summed over every worker process. Scrape it with a read-scope key that is not limited to "
        "part of the fleet (`authorization: {credentials_file: ...}` in Prometheus)."
    ),
    responses=problem_responses(*AUTH_ERRORS),
    media_type="text/plain",
)
async def serve_metrics(principal: PrincipalDep) -> Response[bytes]:
    principal.require_whole_fleet("/metrics")
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
