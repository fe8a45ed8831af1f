"""The access log's batches: written at a timer of the loop's, when full, and in the log's two formats."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.platform.logs import REQUEST_ID, AccessLog


async def test_lines_are_written_a_second_after_the_first_or_when_a_batch_is_full(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = AccessLog("text")
    log.add({"route": "/robots", "method": "GET", "status": 200})
    assert capsys.readouterr().err == ""
    await asyncio.sleep(AccessLog.FLUSH_S + 0.5)  # a loop timer due at FLUSH_S runs before this sleep's end
    assert capsys.readouterr().err == "INFO    app.access: request route=/robots method=GET status=200\n"
    for _ in range(AccessLog.FLUSH_LINES):
        log.add({"status": 200})
    assert capsys.readouterr().err.count("\n") == AccessLog.FLUSH_LINES
    log.flush()  # nothing waits: nothing more is written
    assert capsys.readouterr().err == ""


async def test_json_lines_carry_what_the_json_formatter_writes() -> None:
    written: list[str] = []
    log = AccessLog("json", written.append)
    token = REQUEST_ID.set("trace-7")
    try:
        log.add({"route": "/telemetry", "method": "POST", "status": 200, "duration_ms": 1.5, "readings": 3})
    finally:
        REQUEST_ID.reset(token)
    log.flush()
    line = json.loads(written[0])
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "level": "info",
        "logger": "app.access",
        "message": "request",
        "request_id": "trace-7",
        "route": "/telemetry",
        "method": "POST",
        "status": 200,
        "duration_ms": 1.5,
        "readings": 3,
    }
