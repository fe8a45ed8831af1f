"""Metrics, request ids and structured logs: in-process for the details, and a real Prometheus scraping a real
two-worker API for the whole path (multiprocess aggregation included)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.model.errors import ErrorKind
from app.platform.logs import REQUEST_ID, JsonFormatter
from app.platform.settings import Settings, replace_settings
from benchmarks.servers import api_server, free_port
from tests.support.auth import bearer, issue_key
from tests.support.builders import reading
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)


def metric_value(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in an exposition text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not .level =: it also clears the loggers' cached decisions
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_ingest_counters_rise_and_metrics_need_a_credential(
    settings: Settings, conn: asyncpg.Connection, database_url: str
) -> None:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        reader = await issue_key(pool, "prometheus", "read")
        writer = await issue_key(pool, "gateway", "ingest")
    secured = replace_settings(settings, auth="on")
    async with serve_in_process(secured) as client:
        await client.post("/admin/robots", json={"robot_id": "m1"})  # refused (no admin key): not a reading
        before = (await client.get("/metrics", headers=bearer(reader))).text
        assert_problem(await client.get("/metrics"), ErrorKind.UNAUTHENTICATED)
        await conn.execute("INSERT INTO robots (robot_id) VALUES ('m1')")  # provisioned, as an admin would
        batch = [reading("m1", NOW + timedelta(seconds=i)) for i in range(5)]
        assert (await client.post("/telemetry/", json=batch, headers=bearer(writer))).status_code == 200
        assert (await client.post("/telemetry/", json=batch[:2], headers=bearer(writer))).status_code == 200
        bad = await client.post("/telemetry/", json={"robot_id": "m1"}, headers=bearer(writer))
        assert_problem(bad, ErrorKind.INVALID_READING)
        after = (await client.get("/metrics", headers=bearer(reader))).text

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert delta("fleet_readings_accepted_total") == 5
    assert delta("fleet_readings_duplicate_total") == 2
    assert delta("fleet_readings_rejected_total", '{reason="invalid-reading"}') == 1
    assert delta("fleet_flush_rows_count") >= 1
    # Counted by route template and status, never by raw path.
    assert delta("fleet_http_requests_total", '{method="POST",route="/telemetry",status="200"}') == 2
    assert delta("fleet_http_requests_total", '{method="POST",route="/telemetry",status="422"}') == 1
    assert delta("fleet_http_requests_total", '{method="GET",route="/metrics",status="401"}') == 1
    assert 'fleet_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/metrics"}' in after


async def test_request_ids_are_returned_and_logged_with_the_access_line(
    settings: Settings, captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve_in_process(settings) as client:  # made after `captured` set the level: access lines are on
        mine = await client.get("/robots", headers={"X-Request-ID": "trace-42.a"})
        assert mine.headers["x-request-id"] == "trace-42.a"
        # An id that is not a sane token (too long, or with characters a log reader would trip on) is replaced.
        odd = await client.get("/robots", headers={"X-Request-ID": "x" * 65})
        assert odd.headers["x-request-id"] != "x" * 65 and len(odd.headers["x-request-id"]) == 16
        await client.post("/telemetry/", json=[reading("log-1", NOW), reading("log-2", NOW)])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "app.access"]
    assert access[0]["request_id"] == "trace-42.a" and access[0]["route"] == "/robots" and access[0]["status"] == 200
    assert {"time", "level", "duration_ms", "method"} <= set(access[0])
    assert access[-1]["route"] == "/telemetry" and access[-1]["readings"] == 2
    assert REQUEST_ID.get() is None  # nothing leaks past the request


def prometheus_config(target: str, credentials: Path) -> str:
    return f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: fleet
    authorization:
      credentials_file: {credentials}
    static_configs:
      - targets: ["{target}"]
"""


def query(port: int, promql: str) -> list[dict[str, object]]:
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed")
def test_a_real_prometheus_scrapes_every_worker(database_url: str, conn: asyncpg.Connection) -> None:
    async def provision() -> tuple[str, str]:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
            await pool.execute("INSERT INTO robots (robot_id) SELECT 'p' || g FROM generate_series(1, 20) g")
            return await issue_key(pool, "prometheus", "read"), await issue_key(pool, "gateway", "ingest")

    reader, writer = asyncio.run(provision())
    with api_server(database_url, 2) as (api_port, _), tempfile.TemporaryDirectory() as tmp:
        exposition = httpx.get(f"http://127.0.0.1:{api_port}/metrics", headers=bearer(reader)).text
        checked = subprocess.run(["promtool", "check", "metrics"], input=exposition.encode(), capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        credentials = Path(tmp) / "key"
        credentials.write_text(reader)
        config = Path(tmp) / "prometheus.yml"
        config.write_text(prometheus_config(f"127.0.0.1:{api_port}", credentials))
        prom_port = free_port()
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # A new connection per request, so both workers take some: the sum must count them all.
            for i in range(20):
                batch = [reading(f"p{r}", NOW + timedelta(seconds=i)) for r in range(1, 21)]
                response = httpx.post(f"http://127.0.0.1:{api_port}/telemetry/", json=batch, headers=bearer(writer))
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 30
            seen = 0.0
            while time.monotonic() < deadline and seen < 400:
                time.sleep(1)
                try:
                    result = query(prom_port, "sum(fleet_readings_accepted_total)")
                except httpx.HTTPError:
                    continue  # Prometheus still starting
                seen = float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]
            assert seen == 400
            up = query(prom_port, 'up{job="fleet"}')
            assert up and up[0]["value"][1] == "1"  # type: ignore[index]
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=10)
