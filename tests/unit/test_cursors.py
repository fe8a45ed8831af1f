"""Keyset cursors round-trip to the microsecond and refuse tokens the API did not issue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.model.errors import BadCursor
from app.platform.cursors import decode_cursor, encode_cursor

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_cursor_round_trips_to_the_microsecond() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when)) == when


@pytest.mark.parametrize("token", ["", "!!!", "AAAA", encode_cursor(NOW) + "x"])
def test_foreign_cursors_are_rejected(token: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(token)
