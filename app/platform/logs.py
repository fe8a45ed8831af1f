"""Logs: one JSON object per line (or plain text for development), with the request id of the request at hand.

The id comes from the client's ``X-Request-ID`` when it is a sane token, else it is made here; it is returned in
the same header and carried by a context variable into every line logged while the request is served.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # anything else (a log-injection attempt, a huge value) is replaced
# Attributes a LogRecord always has: the rest were passed with extra={...} and are written as fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_STANDARD.add("color_message")  # uvicorn's copy of its message with terminal colours
_encode = msgspec.json.Encoder().encode
ACCESS_LOGGER = "app.access"  # the name access lines carry, as if logged by this logger


def request_id_from(header: bytes | None) -> str:
    """The client's request id if it is a sane token, else a new one."""
    if header is not None:
        text = header.decode("latin-1")
        if _SANE_ID.fullmatch(text):
            return text
    return _NEW_IDS.next_id()


class RequestIds:
    """Ids unique across the processes of a deployment: a random per-process prefix and a counter, 16 hex digits
    as before. A random id per request read os.urandom each time, 4.5 % of a single-reading POST's CPU; an id only
    needs to be unique, not unguessable."""

    def __init__(self) -> None:
        self._pid = 0
        self._prefix = ""
        self._counter = itertools.count()

    def next_id(self) -> str:
        if self._pid != os.getpid():  # first use in this process (workers are separate processes)
            self._pid, self._prefix, self._counter = os.getpid(), secrets.token_hex(4), itertools.count()
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


_NEW_IDS = RequestIds()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := REQUEST_ID.get()) is not None:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _encode(line).decode()


class AccessLog:
    """The access lines, one a request, in the log's own format (JsonFormatter's object, or TextFormatter's line),
    written to the log's stream in batches rather than through ``logging``.

    Through ``logging`` each line cost ~30 us of a single-reading POST's ~150 us of CPU (a LogRecord, the caller's
    frame, the handler's lock, a write and a flush): the largest part of a POST that is the app's own. Here a line
    is encoded in ~2.5 us and a batch is written at FLUSH_LINES lines, FLUSH_S after its first line, and when the
    app stops, as nginx's ``access_log ... buffer= flush=`` do. A crash (kill -9) can lose up to a second of access
    lines, never a warning or an error: those still go through ``logging``, at once.
    """

    FLUSH_LINES = 256
    FLUSH_S = 1.0

    def __init__(self, log_format: str, write: Callable[[str], object] | None = None) -> None:
        self._json = log_format == "json"
        self._write = write
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, fields: dict[str, Any]) -> None:
        """Write a line with these fields (route, method, status, ...) soon."""
        request_id = REQUEST_ID.get()
        if self._json:
            line: dict[str, Any] = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "info",
                "logger": ACCESS_LOGGER,
                "message": "request",
            }
            if request_id is not None:
                line["request_id"] = request_id
            self._lines.append(_encode(line | fields).decode())
        else:
            prefix = f"INFO    {ACCESS_LOGGER}" + (f" [{request_id}]" if request_id else "")
            self._lines.append(f"{prefix}: request " + " ".join(f"{k}={v}" for k, v in fields.items()))
        if len(self._lines) >= self.FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        """Write every waiting line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            text, self._lines = "\n".join(self._lines) + "\n", []
            (self._write or sys.stderr.write)(text)  # looked up now: the stream logging writes to, as it is then


def access_log_for(log_format: str) -> AccessLog | None:
    """An access log, or None when the log level leaves access lines out (as ``logging`` would at INFO)."""
    return AccessLog(log_format) if logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO) else None


class TextFormatter(logging.Formatter):
    """For development: a readable line, the request id in brackets."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        prefix = f"{record.levelname:<7} {record.name}" + (f" [{request_id}]" if request_id else "")
        fields = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        text = f"{prefix}: {record.getMessage()}" + (f" {fields}" if fields else "")
        return text + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and the app: every line through one formatter."""
    formatter = "app.platform.logs.JsonFormatter" if log_format == "json" else "app.platform.logs.TextFormatter"
    level = "DEBUG" if level == "trace" else level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"fleet": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "fleet", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},  # the app writes its own access line
        },
    }
