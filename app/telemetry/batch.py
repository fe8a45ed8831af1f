"""One flush's rows prepared for COPY, in one pass: keyed, owned, and each robot's newest noted.

Pure (no I/O), so unit-tested without a database; this loop is the ingest hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.model.reading import TIME, Record, Row


@dataclass(slots=True)
class PreparedBatch:
    records: list[Record]  # what COPY writes: each row with its robot's key in place of its id (repeats too)
    rows: list[Row]  # the same readings as the API took them, for the commit listeners
    owners: list[int]  # for each record, the index of the request it came from
    # robot_key -> its newest reading in this batch. Every row of a flush is stored in one transaction and shares its
    # stored_at, which "newer wins" ranks by (reading.is_newer): among them the latest timestamp is the newest.
    newest: dict[int, Record]


def prepare_batch(requests: Sequence[Sequence[Row]], keys: Mapping[str, int]) -> PreparedBatch:
    """Key every row, note which request each row came from and each robot's newest reading. Repeats of a
    (robot, time) are left in: the table's unique index finds them, and only then are they sorted out
    (``first_occurrences``). Checking here hashed every row's aware datetime, which cost 0.8 us a row
    (timeit), a sixth of the API's CPU per batched row, for a case that replays alone bring."""
    records: list[Record] = []
    owners: list[int] = []
    for index, request in enumerate(requests):
        keyed = [(keys[row[0]], *row[1:]) for row in request]
        records += keyed
        owners += [index] * len(keyed)
    return PreparedBatch(records, [row for request in requests for row in request], owners, newest_per_robot(records))


def first_occurrences(records: Sequence[Record]) -> list[bool]:
    """Whether each record is the first of its (robot, time) in the batch: a repeat is never stored, so the first
    occurrence wins."""
    seen: set[tuple[int, datetime]] = set()
    first: list[bool] = []
    for record in records:
        ident = (record[0], record[TIME])
        first.append(ident not in seen)
        seen.add(ident)
    return first


def newest_per_robot(records: Iterable[Record]) -> dict[int, Record]:
    """Each robot's record with the latest timestamp (the first of equals): its newest among records stored
    together (one stored_at)."""
    newest: dict[int, Record] = {}
    for record in records:
        current = newest.get(record[0])
        if current is None or record[TIME] > current[TIME]:
            newest[record[0]] = record
    return newest


def count_accepted(owners: Sequence[int], new_flags: Sequence[bool] | None, requests: int) -> list[int]:
    """Rows each request added: all of its deduplicated rows, or only those flagged new after a conflict."""
    accepted = [0] * requests
    if new_flags is None:
        for owner in owners:
            accepted[owner] += 1
    else:
        for owner, is_new in zip(owners, new_flags, strict=True):
            accepted[owner] += is_new
    return accepted
