"""``python -m app``: serve the API with uvicorn; FLEET_HOST, FLEET_PORT and FLEET_WORKERS choose how."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=os.environ.get("FLEET_HOST", "127.0.0.1"),
        port=int(os.environ.get("FLEET_PORT", "8000")),
        workers=int(os.environ.get("FLEET_WORKERS", "1")),
        log_level=os.environ.get("FLEET_LOG_LEVEL", "info"),
        access_log=False,
        # Live streams never end on their own: give them this long before shutdown drains the ingest buffer.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
