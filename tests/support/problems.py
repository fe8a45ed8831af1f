"""Asserting an error response: its status, the problem media type, and above all its problem ``type``."""

from __future__ import annotations

from typing import Any

import httpx

from app.model.errors import ErrorKind
from app.platform.problems import PROBLEMS, problem_type


def assert_problem(response: httpx.Response, kind: ErrorKind) -> dict[str, Any]:
    """The response is the RFC 9457 problem of this kind; returns its body."""
    assert response.status_code == PROBLEMS[kind].status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == problem_type(kind), body
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    return body
