"""The robot's client: ``record`` puts a reading in the durable outbox, and a sender thread batches the outbox to
the service, retrying with backoff (never sooner than the service's Retry-After), and forgets each reading only
when the service has acknowledged it. After a crash or power cut, a new client on the same outbox sends what is
left: nothing is lost, and nothing is stored twice (the service keeps one reading per robot and timestamp).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from fleet_robot.outbox import Outbox
from fleet_robot.transports import Acked, Refused, Result, Retry, Transport

log = logging.getLogger(__name__)

MAX_BATCH = 100  # readings per message or POST
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
IDLE_WAIT_S = 0.5  # the sender's longest sleep: it also looks for batches gone unanswered
TOO_LARGE = 413


@dataclass
class Stats:
    """Readings, except ``acks`` (batches acknowledged) and ``retries`` (batches sent again)."""

    recorded: int = 0
    acks: int = 0
    accepted: int = 0
    duplicates: int = 0
    retries: int = 0
    refused: int = 0


class RobotClient:
    def __init__(
        self,
        robot_id: str,
        transport: Transport,
        outbox: Outbox | str | Path,
        *,
        max_batch: int = MAX_BATCH,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        rng: random.Random | None = None,
    ) -> None:
        self.robot_id = robot_id
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self.stats = Stats()
        self._transport = transport
        self._max_batch = max_batch
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._rng = rng or random.Random()
        self._record_lock = threading.Lock()
        self._last_time = datetime.now(UTC)
        self._wake = threading.Condition()
        self._in_flight: dict[str, list[tuple[int, bytes]]] = {}
        self._resend: deque[list[tuple[int, bytes]]] = deque()
        self._cursor = 0  # the highest outbox number taken to send; everything above it is new
        self._failures = 0  # answers in a row that were not acks
        self._resume_at = 0.0  # no sending before this (monotonic): backing off
        self._batches = 0
        self._stopping = False
        self._sender = threading.Thread(target=self._send_loop, name=f"fleet-client-{robot_id}", daemon=True)

    def start(self) -> RobotClient:
        self._sender.start()
        return self

    def record(self, reading: Mapping[str, Any]) -> int:
        """Store one reading durably; it is sent from the outbox. Its number in the outbox is returned."""
        return self.record_many([reading])[0]

    def record_many(self, readings: Iterable[Mapping[str, Any]]) -> list[int]:
        """Store readings durably in one transaction. Each gets this robot's id, a timestamp (now, unique and
        rising, unless it has one: it is what makes a re-sent reading recognisable) and ``seq`` (its outbox
        number, unless it has one)."""
        with self._record_lock:
            encoded: list[bytes] = []
            seq = self.outbox.next_seq()
            for reading in readings:
                full = {"robot_id": self.robot_id, **reading}
                full.setdefault("timestamp", self._timestamp())
                full.setdefault("seq", seq + len(encoded))
                encoded.append(json.dumps(full, separators=(",", ":")).encode())
            seqs = self.outbox.append(encoded)
        self.stats.recorded += len(seqs)
        with self._wake:
            self._wake.notify_all()
        return seqs

    def wait_sent(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty; whether it is."""
        deadline = time.monotonic() + timeout_s
        while self.outbox.pending() or self._in_flight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Stop sending; what was not acknowledged stays in the outbox for the next client."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._sender.is_alive():
            self._sender.join()
        self._transport.close()
        self.outbox.close()

    def _timestamp(self) -> str:
        now = datetime.now(UTC)
        if now <= self._last_time:  # two readings in one microsecond, or the clock stepped back
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now.isoformat()

    def _send_loop(self) -> None:
        while True:
            expire = getattr(self._transport, "expire", None)
            if expire is not None:
                expire()
            with self._wake:
                if self._stopping:
                    return
                items = self._next_batch()
                if items is None:
                    continue
                self._batches += 1
                batch_id = f"{items[0][0]}-{items[-1][0]}.{self._batches}"
                self._in_flight[batch_id] = items
            self._transport.send(batch_id, [reading for _, reading in items], partial(self._answered, batch_id))

    def _next_batch(self) -> list[tuple[int, bytes]] | None:
        """The next readings to send, or None after waiting a while (called holding the lock)."""
        wait_s = self._resume_at - time.monotonic()
        if wait_s > 0:
            self._wake.wait(min(wait_s, IDLE_WAIT_S))
            return None
        if len(self._in_flight) >= self._transport.max_in_flight or not self._transport.ready():
            self._wake.wait(IDLE_WAIT_S)  # not connected yet (or again): waiting is not a failed attempt
            return None
        if self._resend:
            return self._resend.popleft()
        items = self.outbox.peek(self._max_batch, after=self._cursor)
        if not items:
            self._wake.wait(IDLE_WAIT_S)
            return None
        self._cursor = items[-1][0]
        return items

    def _answered(self, batch_id: str, result: Result) -> None:
        with self._wake:
            items = self._in_flight.pop(batch_id, None)
            if items is None:
                return
            seqs = [seq for seq, _ in items]
            if isinstance(result, Acked):
                self.outbox.remove(seqs)
                self.stats.accepted += result.accepted
                self.stats.duplicates += result.duplicates
                self.stats.acks += 1
                self._failures = 0
            elif isinstance(result, Retry):
                self._resend.appendleft(items)
                self.stats.retries += 1
                now = time.monotonic()
                if now >= self._resume_at:
                    # The first failure since sending resumed. The other batches in flight fail with it (a broker
                    # gone takes them all) and do not count again: counted apiece, 8 of them pushed the backoff to
                    # its 30 s cap after a one-second outage.
                    self._failures += 1
                    base_s, cap_s = self._backoff
                    jitter_s = self._rng.uniform(0, min(cap_s, base_s * 2 ** min(self._failures, 16)))
                    self._resume_at = now + max(jitter_s, result.after_s or 0.0)
                else:
                    self._resume_at = max(self._resume_at, now + (result.after_s or 0.0))
                log.info("batch %s not stored (%s); again in %.1f s", batch_id, result.reason, self._resume_at - now)
            elif isinstance(result, Refused) and result.status == TOO_LARGE and len(items) > 1:
                half = len(items) // 2  # too many readings in one message: send it as two
                self._resend.extendleft([items[half:], items[:half]])
            else:
                self.outbox.bury(seqs, json.dumps(dict(result.problem)))
                self.stats.refused += len(seqs)
                log.warning("batch %s refused for good (%s); kept in the outbox's dead table", batch_id, result)
            self._wake.notify_all()
