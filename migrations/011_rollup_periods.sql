-- Per robot and quarter hour, what daily activity and path length need, so that a whole-fleet day reads 96 rows a
-- robot instead of every reading (the per-minute rollup is still 1,440 a robot: not enough). What crosses a period's
-- edges is kept at the edges (the first and last reading, the last status, the first and last location), so a
-- query joins successive periods as it would join successive readings. Time within a period is each reading's
-- status until the next reading, at most rollup_state.status_gap_s (FLEET_MAX_STATUS_GAP_S when the period was
-- rolled up). Quarter hours, because every zone in use today is a whole number of them from UTC, so a local day
-- is whole periods. Kept by the same pass as telemetry_1m, under the same watermark.
CREATE TABLE telemetry_15m (
    robot_key integer NOT NULL,
    period timestamptz NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    last_status robot_status,
    -- readings per status (which statuses a robot had), and seconds per status within the period
    idle integer NOT NULL,
    moving integer NOT NULL,
    working integer NOT NULL,
    charging integer NOT NULL,
    error integer NOT NULL,
    idle_s double precision NOT NULL,
    moving_s double precision NOT NULL,
    working_s double precision NOT NULL,
    charging_s double precision NOT NULL,
    error_s double precision NOT NULL,
    -- readings with a location, the first and last of them, and the path between them
    located integer NOT NULL,
    first_latitude double precision,
    first_longitude double precision,
    last_latitude double precision,
    last_longitude double precision,
    metres double precision NOT NULL
);
SELECT create_hypertable('telemetry_15m', by_range('period', INTERVAL '1 day'), create_default_indexes => false);
CREATE UNIQUE INDEX telemetry_15m_robot_period ON telemetry_15m (robot_key, period DESC);

-- The status gap telemetry_15m was rolled up with; NULL: not rolled up yet. A pass with another gap rolls it up
-- again from every reading.
ALTER TABLE rollup_state ADD COLUMN status_gap_s integer;
