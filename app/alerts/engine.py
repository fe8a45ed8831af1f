"""The alert rounds: one process at a time follows the committed readings by commit position, moves each robot's
latest state up to its newest, and evaluates every rule against that state, in one transaction.

Everything a decision rests on is read from the database: the robots' newest readings ("newer wins", as the latest
state keeps them), the open alerts, the stationary anchors and the position the last round reached. So a decision
depends neither on which process stored a reading, nor on the order within a request, nor on a process
surviving: a reading whose process was killed just after its 200 is evaluated by the next round of any process.
Several processes take turns (an advisory lock), so none works from a partial view and nothing flaps. Rounds cost
per robot, not per reading: readings superseded before a round are folded into the robot's newest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from app.alerts import store as alerts
from app.alerts.evaluation import Anchor, CompiledRule, RobotSnapshot, RuleSet, compile_rule, haversine_m
from app.model.reading import Row
from app.platform import metrics
from app.platform.periodic import Periodic
from app.platform.pool import Connection, Pool
from app.platform.settings import AlertSettings
from app.telemetry.latest import follow_latest

log = logging.getLogger(__name__)

NO_LONGER_APPLIES = "the rule no longer applies to this robot (disabled, changed or overridden)"


class Transition(NamedTuple):
    action: Literal["open", "resolve"]
    rule_id: int
    rule_name: str
    kind: str
    robot_id: str
    reason: str


class AlertEngine(Periodic):
    """A round every ``alert_interval_ms`` in each process; a process finding another's round under way skips.
    Offline and stationary rules, which hold by the passing of time, are evaluated at most every
    ``alert_tick_ms``."""

    def __init__(self, pool: Pool, settings: AlertSettings, stale_after_s: int) -> None:
        super().__init__("alert-rounds", settings.alert_interval_ms / 1000)
        self._pool = pool
        self._timer_interval_s = settings.alert_tick_ms / 1000
        self._stale_after_s = stale_after_s
        self._last_timer_round = float("-inf")  # monotonic
        self.rules = RuleSet([])
        self._epoch: int | None = None

    async def tick(self) -> None:
        await self.run_round()

    async def run_round(self) -> bool:
        """One round now: whether this process ran it (False: another process's round was under way)."""
        started = time.monotonic()
        async with self._pool.acquire() as conn, conn.transaction():
            positions = await alerts.start_round(conn)
            if positions is None:
                return False
            low, high = positions
            followed = await follow_latest(conn, low, high)
            await self._load_rules(conn)
            round_ = _Round(self.rules, await alerts.fetch_open_alerts(conn))
            if round_.rules.rules or round_.open:
                anchors = await self._load_anchors(conn)
                if followed:
                    await self._evaluate_readings(conn, round_, [key for key, _ in followed], anchors)
                if started - self._last_timer_round >= self._timer_interval_s:
                    self._last_timer_round = started
                    await self._evaluate_timers(conn, round_, anchors)
                await _apply(conn, round_.transitions)
            await alerts.finish_round(conn, high)
        metrics.ALERT_ROUND_SECONDS.observe(time.monotonic() - started)
        if followed:
            oldest = min(stored_at for _, stored_at in followed)
            metrics.ALERT_LAG_SECONDS.set((datetime.now(UTC) - oldest).total_seconds())
        return True

    async def _load_rules(self, conn: Connection) -> None:
        epoch = await alerts.fetch_rules_epoch(conn)
        if epoch != self._epoch:
            rules = await alerts.fetch_rules(conn)
            self.rules = RuleSet([compile_rule(rule) for rule in rules if rule.enabled])
            self._epoch = epoch

    async def _load_anchors(self, conn: Connection) -> dict[tuple[str, float], Anchor]:
        if not self.rules.stationary_radii:
            return {}
        return await alerts.fetch_anchors(conn)

    # --- reading-driven rules ----------------------------------------------------------------------------

    async def _evaluate_readings(
        self, conn: Connection, round_: _Round, robot_keys: Sequence[int], anchors: dict[tuple[str, float], Anchor]
    ) -> None:
        """Each robot with readings in this round is judged by its latest state: its newest reading."""
        rules = round_.rules
        moved: list[tuple[str, float, float, float, datetime]] = []
        for row, tags, received_at in await alerts.fetch_latest_rows(conn, robot_keys):
            robot_id = row[0]
            if rules.stationary_radii:
                moved += _move_anchors(anchors, robot_id, row, received_at, rules.stationary_radii)
            for rule in rules.applicable(robot_id, tags):
                if rule.check is not None:
                    round_.decide(rule, robot_id, *rule.check(row))
        await alerts.upsert_anchors(conn, moved)

    # --- the timer ---------------------------------------------------------------------------------------

    async def _evaluate_timers(
        self, conn: Connection, round_: _Round, anchors: dict[tuple[str, float], Anchor]
    ) -> None:
        """Offline and stationary rules for every robot, and alerts whose rule no longer applies."""
        open_by_robot: dict[str, set[int]] = {}
        for rule_id, robot_id in round_.open:
            open_by_robot.setdefault(robot_id, set()).add(rule_id)
        now = datetime.now(UTC)
        for robot in await alerts.fetch_snapshot(conn):
            robot_id = robot.robot_id
            applicable = round_.rules.applicable(robot_id, tuple(robot.tags))
            for rule in applicable:
                if rule.kind == "offline":
                    silent_s = (now - robot.received_at).total_seconds()
                    holds = silent_s > rule.after_s
                    reason = f"no reading received for {silent_s:.0f} s" if holds else "a reading was received"
                    round_.decide(rule, robot_id, holds, reason)
                elif rule.kind == "stationary":
                    round_.decide(rule, robot_id, *self._stationary(rule, robot, anchors, now))
            for rule_id in open_by_robot.get(robot_id, set()) - {rule.rule_id for rule in applicable}:
                round_.transitions.append(Transition("resolve", rule_id, "", "", robot_id, NO_LONGER_APPLIES))

    def _stationary(
        self, rule: CompiledRule, robot: RobotSnapshot, anchors: dict[tuple[str, float], Anchor], now: datetime
    ) -> tuple[bool, str]:
        status, received_at = robot.status, robot.received_at
        if status != "moving":
            return False, f"status is {status}"
        if (now - received_at).total_seconds() > self._stale_after_s:
            return False, "offline: its status is not current"
        anchor = anchors.get((robot.robot_id, rule.within_m))
        still_s = 0.0 if anchor is None else (now - anchor.since).total_seconds()
        if still_s >= rule.after_s:
            return True, f"status is moving, but it stayed within {rule.within_m:g} m for {still_s:.0f} s"
        return False, "moving"


class _Round:
    """What one round decides: transitions from the open alerts it read."""

    def __init__(self, rules: RuleSet, open_alerts: set[tuple[int, str]]) -> None:
        self.rules = rules
        self.open = open_alerts
        self.transitions: list[Transition] = []

    def decide(self, rule: CompiledRule, robot_id: str, holds: bool | None, reason: str) -> None:
        key = (rule.rule_id, robot_id)
        if holds and key not in self.open:
            self.transitions.append(Transition("open", rule.rule_id, rule.name, rule.kind, robot_id, reason))
            self.open.add(key)
        elif holds is False and key in self.open:
            self.transitions.append(Transition("resolve", rule.rule_id, rule.name, rule.kind, robot_id, reason))
            self.open.discard(key)


def _move_anchors(
    anchors: dict[tuple[str, float], Anchor],
    robot_id: str,
    row: Row,
    received_at: datetime,
    radii: Sequence[float],
) -> list[tuple[str, float, float, float, datetime]]:
    """The anchors this reading moves (it lies farther than the radius from them, or there were none)."""
    latitude, longitude = row[2], row[3]
    if latitude is None or longitude is None:
        return []
    moved = []
    for within_m in radii:
        anchor = anchors.get((robot_id, within_m))
        if anchor is None or haversine_m(anchor.latitude, anchor.longitude, latitude, longitude) > within_m:
            anchors[robot_id, within_m] = Anchor(latitude, longitude, received_at)
            moved.append((robot_id, within_m, latitude, longitude, received_at))
    return moved


async def _apply(conn: Connection, transitions: Sequence[Transition]) -> None:
    """All of a round's transitions in its transaction: an alert storm costs a few statements."""
    if not transitions:
        return
    openings = [(t.rule_id, t.rule_name, t.kind, t.robot_id, t.reason) for t in transitions if t.action == "open"]
    resolutions = [(t.rule_id, t.robot_id, t.reason) for t in transitions if t.action == "resolve"]
    opened, resolved = await alerts.apply_transitions_in(conn, openings, resolutions)
    metrics.ALERT_TRANSITIONS.labels("alert.opened").inc(len(opened))
    metrics.ALERT_TRANSITIONS.labels("alert.resolved").inc(len(resolved))
