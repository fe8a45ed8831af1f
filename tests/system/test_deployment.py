"""docs/deployment.md's TLS proxy, as shipped: Debian's nginx runs deploy/nginx-tls.conf (only the certificate,
the listen address and the API's address swapped) with a certificate made here, in front of a real API. Over
HTTPS: a reading is stored, HSTS is sent, and the live stream carries the reading through the proxy as it commits."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from app.platform.settings import Settings
from tests.support.alerts import next_event
from tests.support.builders import reading
from tests.support.database import ROOT
from tests.support.servers import live_api
from tests.support.sse import sse_events

pytestmark = pytest.mark.system

TEMPLATE = ROOT / "deploy" / "nginx-tls.conf"
STREAMED_WITHIN_S = 5.0


def nginx_path() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise AssertionError("nginx is missing: `make test-deps` installs it (scripts/nginx.sh)")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fleet.example.com",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@asynccontextmanager
async def tls_proxy(api_base: str, directory: Path) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    cert, key = make_certificate(directory)
    port = free_port()
    config = TEMPLATE.read_text()
    for shipped, here in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("server 127.0.0.1:8000;", f"server {urlsplit(api_base).netloc};"),
        ("/etc/ssl/fleet/fullchain.pem", str(cert)),
        ("/etc/ssl/fleet/privkey.pem", str(key)),
    ):
        assert shipped in config, shipped
        config = config.replace(shipped, here)
    (directory / "nginx.conf").write_text(config)
    (directory / "logs").mkdir()
    process = await asyncio.create_subprocess_exec(
        nginx_path(), "-p", str(directory), "-c", str(directory / "nginx.conf"),
        "-g", f"daemon off; pid {directory}/nginx.pid; error_log {directory}/logs/error.log;",
    )  # fmt: skip
    trust = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    try:
        for _ in range(200):  # nginx is listening within a second or two, even on a loaded machine
            try:
                async with httpx.AsyncClient(verify=trust) as probe:
                    await probe.get(f"{base}/")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        yield base, trust
    finally:
        process.terminate()
        await process.wait()


async def test_the_tls_proxy_of_the_deployment_guide_serves_the_api_and_its_stream(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    async with (
        live_api(settings) as api_base,
        tls_proxy(api_base, tmp_path) as (base, trust),
        httpx.AsyncClient(base_url=base, verify=trust, timeout=10) as api,
    ):
        health = await api.get("/")
        assert health.status_code == 200 and health.json()["database"] == "up", health.text
        assert health.headers["strict-transport-security"] == "max-age=31536000"
        async with api.stream("GET", "/telemetry/stream", params={"robot_id": "tls-1"}) as response:
            events = sse_events(response)
            assert (await anext(events)).get("comment") == "subscribed"
            stored = await api.post("/telemetry", json=reading("tls-1", battery_level=42.0))
            assert stored.json()["accepted"] == 1
            event = await asyncio.wait_for(next_event(events), STREAMED_WITHIN_S)
        assert event["event"] == "reading" and '"battery_level":42.0' in event["data"]
    assert await conn.fetchval("SELECT count(*) FROM telemetry") == 1
