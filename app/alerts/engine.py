"""The alert engine of one process: committed readings evaluated in rounds, time-driven rules on a timer.

Ingest never waits for it. The commit listener only notes each robot's newest committed reading (one dict entry
per robot, so memory is bounded by the fleet, not the ingest rate) and wakes the round loop. A round runs at most
every ``alert_interval_ms``; if rounds fall behind, readings in between are folded into the robot's newest, so a
condition that held only for readings superseded before the next round is not seen. Rounds cost per robot.
Several processes may evaluate at once: the database lets only one alert per (rule, robot) be open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, NamedTuple

from app import metrics
from app.alerts.evaluation import CompiledRule, RuleSet, compile_rule, haversine_m
from app.alerts.rules import rule_from
from app.db import alerts
from app.db.pool import Pool
from app.ingest.latest import LatestState
from app.ingest.reading import Row, RowCandidate, candidate, is_newer
from app.periodic import Periodic
from app.settings import AlertSettings

log = logging.getLogger(__name__)

_LATITUDE: Final = 2
_LONGITUDE: Final = 3
NO_LONGER_APPLIES = "the rule no longer applies to this robot (disabled, changed or overridden)"


class Transition(NamedTuple):
    action: Literal["open", "resolve"]
    rule_id: int
    rule_name: str
    kind: str
    robot_id: str
    reason: str


class Anchor(NamedTuple):
    """Where a robot was last seen to move more than a stationary rule's radius, and since when (server time)."""

    latitude: float
    longitude: float
    since: datetime


class AlertEngine(Periodic):
    """The timer (``tick``) reloads rules when they change, syncs the open alerts every process sees, and
    evaluates offline and stationary rules; ``on_commit`` feeds the round loop for the reading-driven kinds."""

    def __init__(self, pool: Pool, latest: LatestState, settings: AlertSettings, stale_after_s: int) -> None:
        super().__init__("alert-timer", settings.alert_tick_ms / 1000)
        self._pool = pool
        self._latest = latest
        self._interval_s = settings.alert_interval_ms / 1000
        self._stale_after_s = stale_after_s
        self.rules = RuleSet([])
        self._epoch: int | None = None
        self._tags: dict[str, tuple[str, ...]] = {}
        self._open: set[tuple[int, str]] = set()
        self._pending: dict[str, RowCandidate] = {}  # robot -> newest committed reading not yet evaluated
        self._oldest_pending: float | None = None  # monotonic time of the first commit noted since the last round
        self._evaluated: dict[str, RowCandidate] = {}  # robot -> the reading its last evaluation saw
        self._anchors: dict[tuple[str, float], Anchor] = {}
        self._wake = asyncio.Event()
        self._rounds: asyncio.Task[None] | None = None

    def start(self) -> None:
        super().start()
        self._rounds = asyncio.create_task(self._run_rounds(), name="alert-rounds")

    async def close(self) -> None:
        await super().close()
        self._wake.set()
        if self._rounds is not None:
            await self._rounds

    # --- reading-driven rules ----------------------------------------------------------------------------

    def on_commit(self, rows: Sequence[Row], stored_at: datetime) -> None:
        """The ingest commit listener: O(rows) dictionary work, nothing awaited."""
        rules = self.rules
        if not rules.reading_driven and not rules.stationary_radii:
            return
        pending = self._pending
        for robot_id, row in {row[0]: row for row in rows}.items():
            challenger = candidate(row, stored_at)
            if is_newer(challenger, pending.get(robot_id)):
                pending[robot_id] = challenger
        if self._oldest_pending is None:
            self._oldest_pending = time.monotonic()
        self._wake.set()

    async def _run_rounds(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            pending, self._pending = self._pending, {}
            noted_at, self._oldest_pending = self._oldest_pending, None
            try:
                with metrics.ALERT_ROUND_SECONDS.time():
                    await self.evaluate_readings(pending)
            except Exception:
                log.exception("alert round failed; its readings are evaluated again with the robots' next ones")
            if noted_at is not None:
                metrics.ALERT_LAG_SECONDS.set(time.monotonic() - noted_at)
            with contextlib.suppress(TimeoutError):  # at most one round per interval: later commits fold in
                async with asyncio.timeout(self._interval_s):
                    await self._stopping.wait()

    async def evaluate_readings(self, pending: dict[str, RowCandidate]) -> None:
        rules, evaluated = self.rules, self._evaluated
        transitions: list[Transition] = []
        for robot_id, newest in pending.items():
            if not is_newer(newest, evaluated.get(robot_id)):
                continue  # a late reading (backfill): the robot's state has not changed
            evaluated[robot_id] = newest
            row = newest[2]
            if rules.stationary_radii:
                self._move_anchors(robot_id, row, newest[1], rules.stationary_radii)
            for rule in rules.applicable(robot_id, self._tags.get(robot_id, ())):
                if rule.check is not None:
                    holds, reason = rule.check(row)
                    self._decide(transitions, rule, robot_id, holds, reason)
        await self._apply(transitions)

    def _move_anchors(self, robot_id: str, row: Row, received_at: datetime, radii: Sequence[float]) -> None:
        latitude, longitude = row[_LATITUDE], row[_LONGITUDE]
        if latitude is None or longitude is None:
            return
        for within_m in radii:
            anchor = self._anchors.get((robot_id, within_m))
            if anchor is None or haversine_m(anchor.latitude, anchor.longitude, latitude, longitude) > within_m:
                self._anchors[robot_id, within_m] = Anchor(latitude, longitude, received_at)

    # --- the timer ---------------------------------------------------------------------------------------

    async def tick(self) -> None:
        epoch = await alerts.fetch_rules_epoch(self._pool)
        if epoch != self._epoch:
            records = await alerts.fetch_rules(self._pool)
            rules = [rule_from(record) for record in records]
            self.rules = RuleSet([compile_rule(rule) for rule in rules if rule.enabled])
            self._epoch = epoch
        self._open = await alerts.fetch_open_alerts(self._pool)
        if not self.rules.rules and not self._open:
            return  # nothing to watch and nothing to resolve: no fleet-wide read every tick
        await self._latest.sync()  # this process's newest readings, so that "offline" sees them
        snapshot = await alerts.fetch_snapshot(self._pool)
        self._tags = {record["robot_id"]: tuple(record["tags"]) for record in snapshot}
        open_by_robot: dict[str, set[int]] = {}
        for rule_id, robot_id in self._open:
            open_by_robot.setdefault(robot_id, set()).add(rule_id)
        now = datetime.now(UTC)
        transitions: list[Transition] = []
        for record in snapshot:
            robot_id = record["robot_id"]
            applicable = self.rules.applicable(robot_id, self._tags[robot_id])
            for rule in applicable:
                if rule.kind == "offline":
                    silent_s = (now - record["received_at"]).total_seconds()
                    holds = silent_s > rule.after_s
                    reason = f"no reading received for {silent_s:.0f} s" if holds else "a reading was received"
                    self._decide(transitions, rule, robot_id, holds, reason)
                elif rule.kind == "stationary":
                    self._decide(transitions, rule, robot_id, *self._stationary(rule, record, now))
            for rule_id in open_by_robot.get(robot_id, set()) - {rule.rule_id for rule in applicable}:
                transitions.append(Transition("resolve", rule_id, "", "", robot_id, NO_LONGER_APPLIES))
        await self._apply(transitions)

    def _stationary(self, rule: CompiledRule, record: Any, now: datetime) -> tuple[bool, str]:
        status, received_at = record["status"], record["received_at"]
        if status != "moving":
            return False, f"status is {status}"
        if (now - received_at).total_seconds() > self._stale_after_s:
            return False, "offline: its status is not current"
        anchor = self._anchors.get((record["robot_id"], rule.within_m))
        still_s = 0.0 if anchor is None else (now - anchor.since).total_seconds()
        if still_s >= rule.after_s:
            return True, f"status is moving, but it stayed within {rule.within_m:g} m for {still_s:.0f} s"
        return False, "moving"

    # --- transitions -------------------------------------------------------------------------------------

    def _decide(
        self, transitions: list[Transition], rule: CompiledRule, robot_id: str, holds: bool | None, reason: str
    ) -> None:
        is_open = (rule.rule_id, robot_id) in self._open
        if holds and not is_open:
            transitions.append(Transition("open", rule.rule_id, rule.name, rule.kind, robot_id, reason))
        elif holds is False and is_open:
            transitions.append(Transition("resolve", rule.rule_id, rule.name, rule.kind, robot_id, reason))

    async def _apply(self, transitions: Sequence[Transition]) -> None:
        """One transaction for all of a round's transitions: an alert storm costs a few statements, not a
        transaction per alert."""
        if not transitions:
            return
        openings = [(t.rule_id, t.rule_name, t.kind, t.robot_id, t.reason) for t in transitions if t.action == "open"]
        resolutions = [(t.rule_id, t.robot_id, t.reason) for t in transitions if t.action == "resolve"]
        opened, resolved = await alerts.apply_transitions(self._pool, openings, resolutions)
        metrics.ALERT_TRANSITIONS.labels("alert.opened").inc(len(opened))
        metrics.ALERT_TRANSITIONS.labels("alert.resolved").inc(len(resolved))
        # Open now, whichever process opened it; resolved, whoever resolved it.
        self._open.update((rule_id, robot_id) for rule_id, _, _, robot_id, _ in openings)
        self._open.difference_update((rule_id, robot_id) for rule_id, robot_id, _ in resolutions)
