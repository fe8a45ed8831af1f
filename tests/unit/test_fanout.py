"""The live fan-out: subscribers indexed by robot, so readings of other robots cost them nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.ingest import fanout
from app.ingest.fanout import Broadcaster
from app.ingest.reading import Row
from tests.support.builders import make_row

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


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
    broadcaster.publish([make_row("a", NOW), make_row("b", NOW)])
    assert one.queue.qsize() == 1 and everything.queue.qsize() == 2
    assert all(s.queue.empty() for s in idle)
    assert encoded == ["a", "b"]  # once per reading, not per subscriber
    broadcaster.unsubscribe(everything)
    encoded.clear()
    broadcaster.publish([make_row("b", NOW)])  # nobody follows b now: not even encoded
    assert encoded == []
    assert broadcaster.subscriber_count == 2001
