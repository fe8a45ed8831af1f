"""The durable outbox: an SQLite file of readings not yet acknowledged by the service.

A reading is in the outbox once ``append`` returns (WAL, ``synchronous=FULL``: the commit is on disk, so a power
cut after it loses nothing), and leaves it only through ``remove`` (the service acknowledged it) or ``bury`` (the
service refused it for good; kept in ``dead`` for a person to look at). Every reading gets the next number of the
outbox's own counter, which never goes back, so ``produced`` counts every reading ever recorded here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, reading BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, reading BLOB NOT NULL, problem TEXT NOT NULL,
                                 buried_at REAL NOT NULL);
"""


class Outbox:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # AUTOINCREMENT keeps the highest number ever given in sqlite_sequence, even once the outbox is empty.
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            self._last_seq: int = row[0] if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def produced(self) -> int:
        """How many readings were ever appended to this outbox."""
        return self._last_seq

    def next_seq(self) -> int:
        """The number the next appended reading gets (readings carry it as their ``seq``)."""
        return self._last_seq + 1

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def append(self, readings: Sequence[bytes]) -> list[int]:
        """Store encoded readings durably, in one transaction; their numbers, in order."""
        with self._transaction() as db:
            first = self._last_seq + 1
            seqs = list(range(first, first + len(readings)))
            db.executemany("INSERT INTO outbox (seq, reading) VALUES (?, ?)", zip(seqs, readings, strict=True))
        if seqs:
            self._last_seq = seqs[-1]
        return seqs

    def peek(self, limit: int, after: int = 0) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` readings numbered above ``after`` (those up to it are on their way already)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, reading FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [(seq, reading) for seq, reading in rows]

    def remove(self, seqs: Sequence[int]) -> None:
        """The service acknowledged these: forget them."""
        with self._transaction() as db:
            db.executemany("DELETE FROM outbox WHERE seq = ?", ((seq,) for seq in seqs))

    def bury(self, seqs: Sequence[int], problem: str) -> None:
        """The service refused these for good: move them to ``dead`` with its problem, out of the way."""
        with self._transaction() as db:
            for seq in seqs:
                db.execute(
                    "INSERT OR REPLACE INTO dead SELECT seq, reading, ?, ? FROM outbox WHERE seq = ?",
                    (problem, time.time(), seq),
                )
                db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def pending(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            return count

    def dead(self) -> list[tuple[int, bytes, str]]:
        with self._lock:
            return [(s, r, p) for s, r, p in self._db.execute("SELECT seq, reading, problem FROM dead ORDER BY seq")]
