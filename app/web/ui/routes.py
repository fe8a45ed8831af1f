"""The console's routes: its page, its own files, and the pinned Leaflet (with its marker clustering) and uPlot
files (no CDN at run time)."""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[3] / "node_modules"
VENDOR_DIRS = {
    "leaflet": NODE_MODULES / "leaflet" / "dist",
    "markercluster": NODE_MODULES / "leaflet.markercluster" / "dist",
    "uplot": NODE_MODULES / "uplot" / "dist",
}
# Only the page's own origin, and OpenStreetMap's tiles. Scripts are modules of this origin: no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https://tile.openstreetmap.org; style-src 'self'; "
    # Leaflet and uPlot position elements with style attributes; style sheets still come only from here.
    "style-src-attr 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@get("/console", media_type=MediaType.HTML, include_in_schema=False, security=[{}], sync_to_thread=False)
def console_page() -> Response[bytes]:
    """Public: the page holds no data. It asks for an operator key when authentication is on."""
    return Response(
        (STATIC_DIR / "index.html").read_bytes(),
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


def build_console_router() -> Router:
    """The page and the files it loads, none behind a credential (they hold no data)."""
    routers = [
        create_static_files_router(
            path="/console/assets",
            directories=[STATIC_DIR],
            include_in_schema=False,
            cache_control=CacheControlHeader(no_cache=True),
        )
    ]
    for name, directory in VENDOR_DIRS.items():
        if directory.is_dir():
            routers.append(
                create_static_files_router(
                    path=f"/console/vendor/{name}",
                    directories=[directory],
                    include_in_schema=False,
                    cache_control=CacheControlHeader(max_age=86_400),
                )
            )
    return Router(path="/", route_handlers=[console_page, *routers])
