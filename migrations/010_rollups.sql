-- Per robot and minute, what time buckets of an hour or wider need: counts, battery and voltage sums and
-- extremes, the last location, readings per status. Bucket queries over long ranges read these instead of every
-- reading (60 times fewer rows at one reading a second), and add the readings not rolled up yet, so the answer is
-- the one the readings give. Kept by app.rollups after commits: each pass re-aggregates, from the readings, every
-- minute that received readings stored since the last pass (late ones included), so a pass can run twice.
CREATE TABLE telemetry_1m (
    robot_key integer NOT NULL,
    minute timestamptz NOT NULL,
    readings integer NOT NULL,
    battery_sum double precision NOT NULL,
    battery_min double precision NOT NULL,
    battery_max double precision NOT NULL,
    voltage_sum double precision,
    voltage_count integer NOT NULL,
    voltage_min double precision,
    voltage_max double precision,
    located_at timestamptz,  -- the last reading with a location in the minute, and that location
    latitude double precision,
    longitude double precision,
    idle integer NOT NULL,
    moving integer NOT NULL,
    working integer NOT NULL,
    charging integer NOT NULL,
    error integer NOT NULL
);
-- Chunks as long as the readings' (a day), so retention drops both alike.
SELECT create_hypertable('telemetry_1m', by_range('minute', INTERVAL '1 day'), create_default_indexes => false);
CREATE UNIQUE INDEX telemetry_1m_robot_minute ON telemetry_1m (robot_key, minute DESC);

-- Every reading stored (stored_at) before rolled_up_to is in telemetry_1m, and no later one is. -infinity: none
-- yet; the first pass rolls up everything stored so far, readings from before stored_at existed included.
CREATE TABLE rollup_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_up_to timestamptz NOT NULL
);
INSERT INTO rollup_state (rolled_up_to) VALUES ('-infinity');
