"""``python -m app``: serve the API with uvicorn, as the server settings (FLEET_HOST, FLEET_PORT, ...) say."""

from __future__ import annotations

import uvicorn

from app.server import GuardedHttpToolsProtocol
from app.settings import load_settings


def main() -> None:
    server = load_settings().server  # read here too, so that a misspelt variable stops start-up at once
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=server.host,
        port=server.port,
        workers=server.workers,
        log_level=server.log_level,
        access_log=False,
        http=GuardedHttpToolsProtocol,
        timeout_keep_alive=server.idle_timeout_s,
        limit_concurrency=server.max_connections,
        # Live streams never end on their own: give them this long before shutdown drains the ingest buffer.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
