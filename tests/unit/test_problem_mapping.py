"""The one mapping of errors to problems, for failures no route can provoke on demand."""

from __future__ import annotations

import asyncpg

from app.model.errors import ErrorKind
from app.platform.problems import problem_type
from app.web.problems import problem_for


def test_a_rollback_failing_after_a_query_timeout_answers_the_timeout() -> None:
    # asyncpg closes a connection whose statement ran past command_timeout; leaving the transaction then fails
    # with "connection is closed". The client is owed the 503 of the timeout, not a 500.
    try:
        try:
            raise TimeoutError
        except TimeoutError:
            raise asyncpg.InterfaceError("cannot perform operation: connection is closed") from None
    except asyncpg.InterfaceError as exc:
        failed = exc
    failed.__context__ = TimeoutError()
    problem, headers = problem_for(failed, "GET", "/fleet/distance")
    assert problem.type == problem_type(ErrorKind.QUERY_TIMEOUT)
    assert headers == {"Retry-After": "5"}


def test_an_interface_error_on_its_own_is_internal() -> None:
    problem, _ = problem_for(asyncpg.InterfaceError("cannot perform operation"), "GET", "/robots")
    assert problem.type == problem_type(ErrorKind.INTERNAL)
