"""Alert rules, alerts and their transitions. Each transition, its webhook deliveries and its NOTIFY commit as one
transaction, so an alert is never opened without being announced, nor announced without being opened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import msgspec

from app.alerts import queries as sql
from app.alerts.evaluation import Anchor, LatestRow, RobotSnapshot
from app.alerts.payloads import Delivery, Webhook
from app.alerts.rules import AlertRule, rule_from
from app.model.alert import Alert, EventType, alert_from, encode_event, encode_notice
from app.model.errors import RulesFull
from app.model.reading import COLUMNS
from app.platform.pool import Connection, Pool

Record = asyncpg.Record
MAX_ID = 2**63 - 1  # the first page of a newest-first list starts below this


ROW_WIDTH = 1 + len(COLUMNS)  # robot_id and the reading's columns: app.model.reading.Row


class RuleLimits(NamedTuple):
    max_rules: int
    max_positions: int  # geofence positions, over every rule


async def insert_rule(pool: Pool, values: Sequence[Any], limits: RuleLimits) -> AlertRule:
    """``values``: name, kind, robot_id, fleet_tag, condition JSON, enabled, positions. RulesFull past ``limits``."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_room(conn, 0, values[-1], limits)
        row = await conn.fetchrow(sql.INSERT_RULE, *values)
        await conn.execute(sql.BUMP_RULES_EPOCH)
    assert row is not None
    return rule_from(row)


async def update_rule(pool: Pool, rule_id: int, values: Sequence[Any], limits: RuleLimits) -> AlertRule | None:
    """The replaced rule; None if there is no such rule; RulesFull if the change would pass ``limits``."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_room(conn, rule_id, values[-1], limits)
        row = await conn.fetchrow(sql.UPDATE_RULE, rule_id, *values)
        await conn.execute(sql.BUMP_RULES_EPOCH)
    return None if row is None else rule_from(row)


async def _check_room(conn: Connection, rule_id: int, positions: int, limits: RuleLimits) -> None:
    await conn.execute(sql.LOCK_RULES)
    totals = await conn.fetchrow(sql.SELECT_RULE_TOTALS, rule_id)
    assert totals is not None
    rules, total_positions = totals
    if rules >= limits.max_rules:
        raise RulesFull(f"at most {limits.max_rules} alert rules (FLEET_MAX_ALERT_RULES); delete one first")
    if total_positions + positions > limits.max_positions:
        raise RulesFull(
            f"at most {limits.max_positions} geofence positions over every rule (FLEET_MAX_GEOFENCE_POSITIONS); "
            f"{total_positions} are held by other rules and this one has {positions}"
        )


async def delete_rule(pool: Pool, rule_id: int) -> bool:
    """Resolve the rule's open alerts (announced as any resolution is), then delete it; its alerts stay."""
    async with pool.acquire() as conn, conn.transaction():
        resolved = await conn.fetch(sql.RESOLVE_RULE_ALERTS, rule_id, "rule deleted")
        await _announce_all(conn, [("alert.resolved", record) for record in resolved])
        deleted = await conn.fetchval(sql.DELETE_RULE, rule_id)
        await conn.execute(sql.BUMP_RULES_EPOCH)
    return deleted is not None


async def fetch_rule(pool: Pool, rule_id: int) -> AlertRule | None:
    row = await pool.fetchrow(sql.SELECT_RULE, rule_id)
    return None if row is None else rule_from(row)


async def fetch_rules(conn: Pool | Connection) -> list[AlertRule]:
    return [rule_from(row) for row in await conn.fetch(sql.SELECT_RULES)]


async def fetch_rules_page(pool: Pool, after_id: int, limit: int) -> list[AlertRule]:
    return [rule_from(row) for row in await pool.fetch(sql.SELECT_RULES_PAGE, after_id, limit)]


async def fetch_rules_epoch(conn: Pool | Connection) -> int:
    epoch: int = await conn.fetchval(sql.SELECT_RULES_EPOCH)
    return epoch


# (rule_id, rule_name, kind, robot_id, reason) to open; (rule_id, robot_id, resolution) to resolve.
Opening = tuple[int, str, str, str, str]
Resolution = tuple[int, str, str]


async def apply_transitions(
    pool: Pool, openings: Sequence[Opening], resolutions: Sequence[Resolution]
) -> tuple[list[Alert], list[Alert]]:
    """A round's transitions in one transaction, each announced (outbox rows, NOTIFY) in it: returns the alerts
    opened (not those open already, nor those of a rule deleted meanwhile) and resolved (not those resolved
    already). A rule deleted between the statement's check and its insert fails it once; it is run again."""
    for attempt in (1, 2):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await apply_transitions_in(conn, openings, resolutions)
        except asyncpg.ForeignKeyViolationError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def apply_transitions_in(
    conn: Connection, openings: Sequence[Opening], resolutions: Sequence[Resolution]
) -> tuple[list[Alert], list[Alert]]:
    """``apply_transitions`` in the caller's transaction (an alert round's)."""
    opened = await conn.fetch(sql.OPEN_ALERTS, *_columns(openings, 5)) if openings else []
    resolved = await conn.fetch(sql.RESOLVE_ALERTS, *_columns(resolutions, 3)) if resolutions else []
    events: list[tuple[EventType, Record]] = [("alert.opened", r) for r in opened]
    events += [("alert.resolved", r) for r in resolved]
    await _announce_all(conn, events)
    return [alert_from(r) for r in opened], [alert_from(r) for r in resolved]


async def _announce_all(conn: Connection, events: Sequence[tuple[EventType, Record]]) -> None:
    """Outbox rows and NOTIFYs for many transitions, in two statements (not two a transition)."""
    if events:
        bodies = [encode_event(event_type, record) for event_type, record in events]
        ids = [record["alert_id"] for _, record in events]
        await conn.execute(sql.QUEUE_EVENT_DELIVERIES, ids, [event for event, _ in events], bodies)
        await conn.execute(sql.NOTIFY_ALERTS, [encode_notice(event_type, record) for event_type, record in events])


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return [[row[i] for row in rows] for i in range(width)]


async def acknowledge_alert(pool: Pool, alert_id: int, by: str, note: str | None) -> tuple[Alert | None, bool]:
    """(the alert, whether this call acknowledged it); (None, False) if there is no such alert."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(sql.ACKNOWLEDGE_ALERT, alert_id, by, note)
        if record is not None:
            await _announce_all(conn, [("alert.acknowledged", record)])
            return alert_from(record), True
        found = await conn.fetchrow(sql.SELECT_ALERT, alert_id)
        return (None if found is None else alert_from(found)), False


async def acknowledge_alerts(
    pool: Pool, alert_ids: Sequence[int], by: str, note: str | None, visible: Sequence[str] | None
) -> list[Alert]:
    """Acknowledge, in one transaction, those of these alerts that are open, not acknowledged, and of a robot in
    ``visible`` (None: any); returns them. A deadlock with an alert round resolving the same alerts in another
    order is retried: each attempt is all or nothing."""
    for attempt in (1, 2, 3):
        try:
            async with pool.acquire() as conn, conn.transaction():
                records = await conn.fetch(sql.ACKNOWLEDGE_ALERTS, list(alert_ids), by, note, visible)
                records.sort(key=lambda record: record["alert_id"])
                await _announce_all(conn, [("alert.acknowledged", record) for record in records])
                return [alert_from(record) for record in records]
        except asyncpg.DeadlockDetectedError:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


async def retire_robot_in(conn: Connection, robot_id: str, resolution: str, delete_history: bool) -> None:
    """In the caller's transaction: resolve the robot's open alerts (announced as any resolution is), forget its
    anchors and, if asked, delete its alerts (their deliveries by cascade)."""
    resolved = await conn.fetch(sql.RESOLVE_ROBOT_ALERTS, robot_id, resolution)
    await _announce_all(conn, [("alert.resolved", record) for record in resolved])
    await conn.execute(sql.DELETE_ROBOT_ANCHORS, robot_id)
    if delete_history:
        await conn.execute(sql.DELETE_ROBOT_ALERTS, robot_id)


async def fetch_alert(pool: Pool, alert_id: int) -> Alert | None:
    row = await pool.fetchrow(sql.SELECT_ALERT, alert_id)
    return None if row is None else alert_from(row)


async def fetch_alerts_page(
    pool: Pool,
    before_id: int | None,
    state: str | None,
    robot_id: str | None,
    kind: str | None,
    visible: Sequence[str] | None,
    limit: int,
    rule_id: int | None = None,
    opened_since: datetime | None = None,
    opened_until: datetime | None = None,
) -> list[Alert]:
    """Newest first, below ``before_id``; each filter left None is no filter; opened in [since, until)."""
    before = MAX_ID if before_id is None else before_id
    rows = await pool.fetch(
        sql.SELECT_ALERTS_PAGE, before, state, robot_id, kind, visible, limit, rule_id, opened_since, opened_until
    )
    return [alert_from(row) for row in rows]


async def fetch_open_alerts(conn: Connection) -> set[tuple[int, str]]:
    return {(row["rule_id"], row["robot_id"]) for row in await conn.fetch(sql.SELECT_OPEN_ALERTS)}


async def fetch_snapshot(conn: Connection) -> list[RobotSnapshot]:
    """Every robot with a latest state."""
    return [RobotSnapshot(*row) for row in await conn.fetch(sql.SELECT_ALERT_SNAPSHOT)]


# --- rounds ----------------------------------------------------------------------------------------------------


async def start_round(conn: Connection) -> tuple[int, int] | None:
    """In the caller's transaction: None if another process is running a round; else the positions the round
    follows, [from, to): from where the last round stopped to below every transaction still running."""
    if not await conn.fetchval(sql.TRY_ROUND_LOCK):
        return None
    row = await conn.fetchrow(sql.START_ROUND)
    assert row is not None
    low: int = row["derived_xid"]
    return low, max(low, row["settled"])


async def finish_round(conn: Connection, high: int) -> None:
    await conn.execute(sql.SET_DERIVED_XID, high)


async def fetch_latest_rows(conn: Connection, robot_keys: Sequence[int]) -> list[LatestRow]:
    """The latest state of these robots."""
    latest = []
    for record in await conn.fetch(sql.SELECT_LATEST_ROWS, list(robot_keys)):
        values = tuple(record)
        latest.append(LatestRow(values[:ROW_WIDTH], values[ROW_WIDTH], values[ROW_WIDTH + 1]))
    return latest


async def fetch_anchors(conn: Connection) -> dict[tuple[str, float], Anchor]:
    """Each (robot, stationary radius)'s anchor."""
    return {
        (r["robot_id"], r["within_m"]): Anchor(r["latitude"], r["longitude"], r["since"])
        for r in await conn.fetch(sql.SELECT_ANCHORS)
    }


async def upsert_anchors(conn: Connection, anchors: Sequence[tuple[str, float, float, float, datetime]]) -> None:
    if anchors:
        await conn.execute(sql.UPSERT_ANCHORS, *_columns(anchors, 5))


# --- webhooks ------------------------------------------------------------------------------------------------


async def insert_webhook(pool: Pool, url: str, description: str, secret: str) -> Webhook:
    row = await pool.fetchrow(sql.INSERT_WEBHOOK, url, description, secret)
    assert row is not None
    return Webhook(**dict(row))


async def fetch_webhooks(pool: Pool) -> list[Webhook]:
    return [Webhook(**dict(row)) for row in await pool.fetch(sql.SELECT_WEBHOOKS)]


async def delete_webhook(pool: Pool, webhook_id: int) -> bool:
    return await pool.fetchval(sql.DELETE_WEBHOOK, webhook_id) is not None


class ClaimedDelivery(NamedTuple):
    """A delivery leased to this process for one attempt: what to send, where, signed with which secret."""

    delivery_id: int
    attempts: int  # counting this one
    body: str
    url: str
    secret: str


async def claim_deliveries(pool: Pool, limit: int, lease_s: float) -> list[ClaimedDelivery]:
    return [ClaimedDelivery(*row) for row in await pool.fetch(sql.CLAIM_DELIVERIES, limit, lease_s)]


async def mark_delivered(pool: Pool, delivery_id: int, status: int) -> None:
    await pool.execute(sql.MARK_DELIVERED, delivery_id, status)


async def mark_attempt_failed(
    pool: Pool, delivery_id: int, status: int | None, error: str, retry_in_s: float, max_attempts: int
) -> None:
    await pool.execute(sql.MARK_ATTEMPT_FAILED, delivery_id, status, error, retry_in_s, max_attempts)


async def fetch_deliveries_page(
    pool: Pool, webhook_id: int, before_id: int | None, limit: int
) -> list[Delivery] | None:
    """A page of the webhook's deliveries, or None if there is no such webhook (any more)."""
    before = MAX_ID if before_id is None else before_id
    records: list[Record] = await pool.fetch(sql.SELECT_DELIVERIES_PAGE, webhook_id, before, limit)
    if not records and not await pool.fetchval(sql.WEBHOOK_EXISTS, webhook_id):
        return None
    return [msgspec.convert(dict(record), Delivery) for record in records]
