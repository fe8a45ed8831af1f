"""Logs: one JSON object per line (or plain text for development), with the request id of the request at hand.

The id comes from the client's ``X-Request-ID`` when it is a sane token, else it is made here; it is returned in
the same header and carried by a context variable into every line logged while the request is served.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # anything else (a log-injection attempt, a huge value) is replaced
# Attributes a LogRecord always has: the rest were passed with extra={...} and are written as fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_STANDARD.add("color_message")  # uvicorn's copy of its message with terminal colours
_encode = msgspec.json.Encoder().encode


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
    formatter = "app.logs.JsonFormatter" if log_format == "json" else "app.logs.TextFormatter"
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
