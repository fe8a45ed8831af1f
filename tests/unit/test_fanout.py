"""The live fan-out: subscribers indexed by robot, so readings of other robots cost them nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.model.reading import Row
from app.telemetry import fanout
from app.telemetry.commits import CommitOrder
from app.telemetry.fanout import Broadcaster
from tests.support.builders import make_row

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def committed(rows: list[Row], stored_at: datetime = NOW) -> tuple[list[Row], datetime]:
    """Rows as a flush hands them on: with the stored_at of its transaction."""
    return rows, stored_at


async def test_each_subscriber_gets_its_robots_and_idle_ones_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[str] = []
    real = fanout.encode_streamed

    def counting(row: Row) -> bytes:
        encoded.append(row[0])
        return real(row)

    monkeypatch.setattr(fanout, "encode_streamed", counting)
    broadcaster = Broadcaster(queue_size=100)
    idle = [broadcaster.subscribe(frozenset({f"quiet-{i}"})) for i in range(2000)]
    one = broadcaster.subscribe(frozenset({"a"}))
    everything = broadcaster.subscribe(None)
    broadcaster.publish(*committed([make_row("a", NOW), make_row("b", NOW)]))
    assert one.queue.qsize() == 1 and everything.queue.qsize() == 2
    assert all(s.queue.empty() for s in idle)
    assert encoded == ["a", "b"]  # once per reading, not per subscriber
    broadcaster.unsubscribe(everything)
    encoded.clear()
    broadcaster.publish(*committed([make_row("b", NOW)]))  # nobody follows b now: not even encoded
    assert encoded == []
    assert broadcaster.subscriber_count == 2001


async def test_positions_only_rise_within_and_across_flushes() -> None:
    broadcaster = Broadcaster(queue_size=100)
    everything = broadcaster.subscribe(None)
    later = NOW + timedelta(milliseconds=5)
    # One request's body in any order; then a later request.
    broadcaster.publish(*committed([make_row("b", NOW), make_row("a", NOW + timedelta(seconds=1)), make_row("a", NOW)]))
    broadcaster.publish(*committed([make_row("a", NOW - timedelta(hours=1))], stored_at=later))  # backfill
    positions = []
    while not everything.queue.empty():
        item = everything.queue.get_nowait()
        assert item is not None
        positions.append(item[0])
    assert positions == sorted(positions) and len(positions) == 4
    assert positions[-1] == (later, "a", NOW - timedelta(hours=1))


def test_commits_reach_listeners_in_flush_order_even_when_they_end_out_of_order() -> None:
    seen: list[list[Row]] = []
    order = CommitOrder()
    order.add_listener(lambda rows, _records: seen.append(list(rows)))
    first, second, third = order.reserve(), order.reserve(), order.reserve()
    rows = {n: [make_row(f"r{n}", NOW)] for n in range(3)}
    order.end(third, *committed(rows[2]))
    order.end(second)  # failed: nothing to hand on, and it must not hold the others back
    assert seen == []  # the first has not ended yet
    order.end(first, *committed(rows[0]))
    assert seen == [rows[0], rows[2]]
