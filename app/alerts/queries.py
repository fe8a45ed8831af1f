"""The alerts feature's SQL, as named constants: rules, alerts and their transitions, rounds, anchors and webhook
deliveries. Values go in only as $n parameters."""

from __future__ import annotations

from app.platform.notices import ALERT_CHANNEL, COMMITTED_BELOW
from app.telemetry.queries import READING_COLUMNS_AS_TEXT

DELETE_ROBOT_ANCHORS = "DELETE FROM alert_anchors WHERE robot_id = $1"


DELETE_ROBOT_ALERTS = "DELETE FROM alerts WHERE robot_id = $1"  # and their webhook deliveries, by cascade


RULE_COLUMNS = "rule_id, name, condition::text AS condition, robot_id, fleet_tag, enabled, created_at, updated_at"


INSERT_RULE = f"""
INSERT INTO alert_rules (name, kind, robot_id, fleet_tag, condition, enabled, positions)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
RETURNING {RULE_COLUMNS}
"""


UPDATE_RULE = f"""
UPDATE alert_rules
SET name = $2, kind = $3, robot_id = $4, fleet_tag = $5, condition = $6::jsonb, enabled = $7, positions = $8,
    updated_at = now()
WHERE rule_id = $1
RETURNING {RULE_COLUMNS}
"""


DELETE_RULE = "DELETE FROM alert_rules WHERE rule_id = $1 RETURNING rule_id"


# Rule changes take turns (alert rounds only read, and are not blocked), so the totals below stay true to COMMIT.
LOCK_RULES = "LOCK TABLE alert_rules IN SHARE ROW EXCLUSIVE MODE"


# How many rules and geofence positions there are, leaving out the rule being replaced ($1; 0 for a new one).
SELECT_RULE_TOTALS = "SELECT count(*), coalesce(sum(positions), 0) FROM alert_rules WHERE rule_id <> $1"


SELECT_RULE = f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE rule_id = $1"


SELECT_RULES = f"SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY rule_id"


SELECT_RULES_PAGE = f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE rule_id > $1 ORDER BY rule_id LIMIT $2"


# Moved in the transaction of every rule change; each process polls it and reloads its rules when it moves.
BUMP_RULES_EPOCH = "UPDATE alert_rules_epoch SET epoch = epoch + 1"


SELECT_RULES_EPOCH = "SELECT epoch FROM alert_rules_epoch"


ALERT_COLUMNS = (
    "alert_id, rule_id, rule_name, kind, robot_id, reason, opened_at, acknowledged_at, acknowledged_by, note, "
    "resolved_at, resolution, sequence"
)


RESOLVE_RULE_ALERTS = f"""
UPDATE alerts SET resolved_at = now(), resolution = $2, sequence = sequence + 1
WHERE rule_id = $1 AND resolved_at IS NULL
RETURNING {ALERT_COLUMNS}
"""


RESOLVE_ROBOT_ALERTS = f"""
UPDATE alerts SET resolved_at = now(), resolution = $2, sequence = sequence + 1
WHERE robot_id = $1 AND resolved_at IS NULL
RETURNING {ALERT_COLUMNS}
"""


ACKNOWLEDGE_ALERT = f"""
UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2, note = $3, sequence = sequence + 1
WHERE alert_id = $1 AND resolved_at IS NULL AND acknowledged_at IS NULL
RETURNING {ALERT_COLUMNS}
"""


# $1 the alerts, $4 the robots a limited key sees (NULL: any). Rows locked in id order: two calls on overlapping
# sets wait for each other instead of deadlocking.
ACKNOWLEDGE_ALERTS = f"""
WITH target AS (
  SELECT alert_id FROM alerts
  WHERE alert_id = ANY($1::bigint[]) AND resolved_at IS NULL AND acknowledged_at IS NULL
    AND ($4::text[] IS NULL OR robot_id = ANY($4))
  ORDER BY alert_id
  FOR UPDATE
)
UPDATE alerts a SET acknowledged_at = now(), acknowledged_by = $2, note = $3, sequence = a.sequence + 1
FROM target t
WHERE a.alert_id = t.alert_id AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL
RETURNING {", ".join(f"a.{column}" for column in ALERT_COLUMNS.split(", "))}
"""


SELECT_ALERT = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1"


# Newest first. $2 state, $3 robot, $4 kind, $5 the robots a limited key sees (NULL: no filter), $7 rule, opened in
# [$8, $9).
SELECT_ALERTS_PAGE = f"""
SELECT {ALERT_COLUMNS} FROM alerts
WHERE alert_id < $1
  AND CASE $2::text
        WHEN 'active' THEN resolved_at IS NULL AND acknowledged_at IS NULL
        WHEN 'acknowledged' THEN resolved_at IS NULL AND acknowledged_at IS NOT NULL
        WHEN 'resolved' THEN resolved_at IS NOT NULL
        ELSE true
      END
  AND ($3::text IS NULL OR robot_id = $3)
  AND ($4::text IS NULL OR kind = $4)
  AND ($5::text[] IS NULL OR robot_id = ANY($5))
  AND ($7::int IS NULL OR rule_id = $7)
  AND ($8::timestamptz IS NULL OR opened_at >= $8)
  AND ($9::timestamptz IS NULL OR opened_at < $9)
ORDER BY alert_id DESC
LIMIT $6
"""


SELECT_OPEN_ALERTS = "SELECT rule_id, robot_id FROM alerts WHERE resolved_at IS NULL AND rule_id IS NOT NULL"


# What the timer-driven rules look at: each robot's tags, when its latest reading arrived, and its status.
SELECT_ALERT_SNAPSHOT = """
SELECT r.robot_id, r.tags, l.received_at, l.status::text AS status
FROM robots r JOIN robot_latest l USING (robot_key)
"""


# An alert round (app.alerts.engine): one process at a time, the others skip it. It follows the readings from the
# position the last round reached to every reading whose transaction has ended, and moves the position in the
# same transaction: a round that fails or dies leaves it where it was, for the next round of any process.
TRY_ROUND_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('fleet-alert-round'))"


START_ROUND = f"SELECT derived_xid, {COMMITTED_BELOW} AS settled FROM derived_state FOR UPDATE"


SET_DERIVED_XID = "UPDATE derived_state SET derived_xid = $1"


# The latest state of the robots in $1, as rows the reading checks take (app.model.reading.Row), with tags.
SELECT_LATEST_ROWS = f"""
SELECT r.robot_id, {", ".join(f"l.{c}" for c in READING_COLUMNS_AS_TEXT.split(", "))}, r.tags, l.received_at
FROM robot_latest l JOIN robots r USING (robot_key)
WHERE l.robot_key = ANY($1::integer[])
"""


SELECT_ANCHORS = "SELECT robot_id, within_m, latitude, longitude, since FROM alert_anchors"


UPSERT_ANCHORS = """
INSERT INTO alert_anchors (robot_id, within_m, latitude, longitude, since)
SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[])
ON CONFLICT (robot_id, within_m) DO UPDATE
SET latitude = excluded.latitude, longitude = excluded.longitude, since = excluded.since
"""


WEBHOOK_COLUMNS = "webhook_id, url, description, created_at"


INSERT_WEBHOOK = f"INSERT INTO webhooks (url, description, secret) VALUES ($1, $2, $3) RETURNING {WEBHOOK_COLUMNS}"


SELECT_WEBHOOKS = f"SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY webhook_id"


DELETE_WEBHOOK = "DELETE FROM webhooks WHERE webhook_id = $1 RETURNING webhook_id"


WEBHOOK_EXISTS = "SELECT EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = $1)"


# Due deliveries, each leased for $2 s: a process that dies mid-attempt leaves it to any other after the lease.
# SKIP LOCKED: processes claiming at once take different deliveries.
CLAIM_DELIVERIES = """
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM webhooks w
WHERE w.webhook_id = d.webhook_id
  AND d.delivery_id IN (
      SELECT delivery_id FROM webhook_deliveries
      WHERE state = 'pending' AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT $1
      FOR UPDATE SKIP LOCKED)
RETURNING d.delivery_id, d.attempts, d.body, w.url, w.secret
"""


MARK_DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), last_status = $2, last_error = NULL
WHERE delivery_id = $1
"""


# $4: seconds until the next attempt; past $5 attempts the delivery is given up ('failed').
MARK_ATTEMPT_FAILED = """
UPDATE webhook_deliveries
SET state = CASE WHEN attempts >= $5 THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => $4), last_status = $2, last_error = $3
WHERE delivery_id = $1
"""


SELECT_DELIVERIES_PAGE = """
SELECT delivery_id, webhook_id, alert_id, event, state, attempts, next_attempt_at, last_status, last_error,
       created_at, delivered_at
FROM webhook_deliveries
WHERE webhook_id = $1 AND delivery_id < $2
ORDER BY delivery_id DESC
LIMIT $3
"""


# A round's transitions in one transaction, a statement per step whatever their number. Openings skip rules
# deleted since the round read them (the join), and any (rule, robot) already open: the partial unique index
# alerts_one_open makes a second opening, by any process, a no-op (the conflict).
OPEN_ALERTS = f"""
INSERT INTO alerts (rule_id, rule_name, kind, robot_id, reason)
SELECT u.rule_id, u.rule_name, u.kind, u.robot_id, u.reason
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(rule_id, rule_name, kind, robot_id, reason)
JOIN alert_rules r USING (rule_id)
ON CONFLICT (rule_id, robot_id) WHERE resolved_at IS NULL DO NOTHING
RETURNING {ALERT_COLUMNS}
"""


RESOLVE_ALERTS = f"""
UPDATE alerts a SET resolved_at = now(), resolution = u.resolution, sequence = a.sequence + 1
FROM unnest($1::int[], $2::text[], $3::text[]) AS u(rule_id, robot_id, resolution)
WHERE a.rule_id = u.rule_id AND a.robot_id = u.robot_id AND a.resolved_at IS NULL
RETURNING {", ".join(f"a.{column}" for column in ALERT_COLUMNS.split(", "))}
"""


QUEUE_EVENT_DELIVERIES = """
INSERT INTO webhook_deliveries (webhook_id, alert_id, event, body)
SELECT w.webhook_id, e.alert_id, e.event, e.body
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(alert_id, event, body) CROSS JOIN webhooks w
"""


NOTIFY_ALERTS = f"SELECT pg_notify('{ALERT_CHANNEL}', body) FROM unnest($1::text[]) AS body"
