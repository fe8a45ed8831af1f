-- Commit positions: every reading carries the id of the transaction that stored it (txid_current(), 64 bits, so
-- it never wraps). Whatever is derived from the readings (rollups, latest state, alerts, streams across processes)
-- follows them by position, not by time: a reader's snapshot xmin (pg_snapshot_xmin(pg_current_snapshot())) is a
-- cut-off below which every transaction has ended, so "stored_xid < xmin" is a set that no later commit can join.
-- A stored_at cut-off needed a settle time on trust instead, since a transaction's start does not order commits.
-- txid_current() rather than pg_current_xact_id(): it is already a bigint, which BRIN indexes (xid8 has no BRIN
-- operator class) and COPY fills per row without a text cast. Rows stored before this migration have none (NULL).
ALTER TABLE telemetry ADD COLUMN stored_xid bigint;
ALTER TABLE telemetry ALTER COLUMN stored_xid SET DEFAULT txid_current();
-- As stored_at's: rows arrive in position order, so block ranges are tight and COPY barely pays for it.
CREATE INDEX telemetry_stored_xid ON telemetry USING brin (stored_xid) WITH (autosummarize = on);

-- The rollups' watermark becomes a position: every reading with stored_xid below rolled_up_xid (or none) is rolled
-- up, no other. NULL: not rolled up yet. The rollups are rebuilt from every reading at the next pass: replays
-- stored rows with a NULL stored_at (their staging table lacked the column's default), and those were in neither
-- the rollups nor the part read from the readings.
ALTER TABLE rollup_state ADD COLUMN rolled_up_xid bigint;
ALTER TABLE rollup_state DROP COLUMN rolled_up_to;
TRUNCATE telemetry_1m, telemetry_15m;
UPDATE rollup_state SET status_gap_s = NULL;

-- How far the latest state and the alert rounds have followed the readings: every reading with stored_xid below
-- derived_xid has been offered to robot_latest and evaluated. Readings stored before this migration are taken into
-- the latest state once, here (one index probe per robot), as start-up used to at every start.
CREATE TABLE derived_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    derived_xid bigint NOT NULL
);
INSERT INTO derived_state (derived_xid) VALUES (txid_current());

INSERT INTO robot_latest AS l (robot_key, time, latitude, longitude, battery_level, battery_voltage, status, seq,
                               heading, speed, altitude, accuracy, pose_frame, pose_x, pose_y, pose_yaw, fields, received_at)
SELECT r.robot_key, n.*
FROM robots AS r
CROSS JOIN LATERAL (
    SELECT t.time, t.latitude, t.longitude, t.battery_level, t.battery_voltage, t.status, t.seq, t.heading,
           t.speed, t.altitude, t.accuracy, t.pose_frame, t.pose_x, t.pose_y, t.pose_yaw, t.fields,
           coalesce(t.stored_at, least(t.time, now()))
    FROM telemetry t WHERE t.robot_key = r.robot_key ORDER BY t.time DESC LIMIT 1
) AS n
ON CONFLICT (robot_key) DO UPDATE
SET time = excluded.time, latitude = excluded.latitude, longitude = excluded.longitude,
    battery_level = excluded.battery_level, battery_voltage = excluded.battery_voltage, status = excluded.status,
    seq = excluded.seq, heading = excluded.heading, speed = excluded.speed, altitude = excluded.altitude,
    accuracy = excluded.accuracy, pose_frame = excluded.pose_frame, pose_x = excluded.pose_x, pose_y = excluded.pose_y,
    pose_yaw = excluded.pose_yaw, fields = excluded.fields, received_at = excluded.received_at
WHERE (least(excluded.time, excluded.received_at), excluded.time) > (least(l.time, l.received_at), l.time);

-- Stationary rules: where each robot was last seen to move more than a rule's radius, and since when. Kept by the
-- alert round (one process at a time), so every process judges "stationary" from the same anchor.
CREATE TABLE alert_anchors (
    robot_id text COLLATE "C" NOT NULL,
    within_m double precision NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    since timestamptz NOT NULL,
    PRIMARY KEY (robot_id, within_m)
);

-- Each alert's transitions are numbered (opened 1, then 2, 3): webhook deliveries are retried independently and
-- may arrive out of order, and a receiver keeps the event with the highest sequence.
ALTER TABLE alerts ADD COLUMN sequence integer NOT NULL DEFAULT 1;
UPDATE alerts SET sequence = 1 + (acknowledged_at IS NOT NULL)::integer + (resolved_at IS NOT NULL)::integer;
