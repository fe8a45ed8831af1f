"""The answer to OPTIONS on a path served by several handlers. Litestar 2 builds its default OPTIONS handler with
the path's first handler and never updates it, so ``Allow`` lists only that handler's method (litestar#4169,
fixed in Litestar 3). ``fix_default_options`` points each default handler at its path's final route."""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute

DEFAULT_OPTIONS_HANDLER = "options_handler"  # the name of the function Litestar generates


def fix_default_options(app: Litestar) -> int:
    """Rebind every default OPTIONS handler to the route it answers for; returns how many were rebound."""
    rebound = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            function = handler.fn
            if getattr(function, "__name__", "") != DEFAULT_OPTIONS_HANDLER:
                continue
            for cell in getattr(function, "__closure__", None) or ():
                if isinstance(cell.cell_contents, HTTPRoute) and cell.cell_contents is not route:
                    cell.cell_contents = route  # it reads route.methods when it answers
                    rebound += 1
    return rebound
