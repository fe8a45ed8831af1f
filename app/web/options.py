"""The answer to OPTIONS on a path served by several handlers. Litestar 2 builds its default OPTIONS handler with
the path's first handler and never updates it, so ``Allow`` lists only that handler's method (litestar#4169,
fixed in Litestar 3). A ``before_send`` hook, Litestar's public way to change a response on its way out, writes
``Allow`` from the path's final route instead of patching the generated handler."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


async def allow_every_method(message: Message, scope: Scope) -> None:
    """Give an OPTIONS answer the ``Allow`` of every method its path serves (OPTIONS is rare: the routes are
    looked up each time)."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    headers = MutableScopeHeaders.from_message(message)
    if "allow" not in headers:
        return
    template = scope.get("path_template")
    for route in scope["app"].routes:
        if isinstance(route, HTTPRoute) and route.path_format == template:
            headers["allow"] = ", ".join(sorted(route.methods))
            return
