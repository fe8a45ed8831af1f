"""Commit listeners called in flush order, so that what they see (the live stream) is in received order.

Flushes run concurrently (``flush_concurrency``) and can commit out of order; a flush's rows are handed on only
after every earlier flush has ended (committed or failed). Flushes start their transactions in the order they take
their batches, so the ``stored_at`` (transaction start) each flush hands on only ever rises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from app.model.reading import Row

log = logging.getLogger(__name__)

# Called with a flush's stored rows and their stored_at (the telemetry column the database filled in).
CommitListener = Callable[[Sequence[Row], datetime], None]


class CommitOrder:
    def __init__(self) -> None:
        self._listeners: list[CommitListener] = []
        self._next_seq = 0  # the next flush to be given a number
        self._next_out = 0  # the next flush whose rows go to the listeners
        self._ended: dict[int, tuple[Sequence[Row], datetime | None]] = {}

    def add_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def reserve(self) -> int:
        """A number for a flush, taken in the order flushes take their batches."""
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return seq

    def end(self, seq: int, rows: Sequence[Row] = (), stored_at: datetime | None = None) -> None:
        """Flush ``seq`` has ended (no rows if it failed): hand on every flush now due, in order."""
        self._ended[seq] = (rows, stored_at)
        while self._next_out in self._ended:
            due_rows, due_stored_at = self._ended.pop(self._next_out)
            self._next_out += 1
            if due_rows and due_stored_at is not None:
                self._notify(due_rows, due_stored_at)

    def _notify(self, rows: Sequence[Row], stored_at: datetime) -> None:
        for listener in self._listeners:
            try:
                listener(rows, stored_at)
            except Exception:
                log.exception("commit listener failed")
