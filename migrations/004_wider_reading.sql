-- The wider reading: optional motion fields, a local pose for robots without GPS, the robot's own fields
-- (jsonb), and battery values stored as sent. Latest state moves to a table with the reading's own columns.

-- real kept 70.09 as 70.0899963...; through text, each stored value converts to the shortest decimal that
-- names it, which is what the robot sent.
ALTER TABLE telemetry
    ALTER COLUMN battery_level TYPE double precision USING battery_level::text::double precision,
    ALTER COLUMN battery_voltage TYPE double precision USING battery_voltage::text::double precision,
    ALTER COLUMN latitude DROP NOT NULL,
    ALTER COLUMN longitude DROP NOT NULL,
    ADD COLUMN heading double precision,
    ADD COLUMN speed double precision,
    ADD COLUMN altitude double precision,
    ADD COLUMN accuracy double precision,
    ADD COLUMN pose_frame text,
    ADD COLUMN pose_x double precision,
    ADD COLUMN pose_y double precision,
    ADD COLUMN pose_yaw double precision,
    ADD COLUMN fields jsonb;

-- Each robot's newest reading, with exactly the reading's columns, only ever moved forward in time.
CREATE TABLE robot_latest (LIKE telemetry);
ALTER TABLE robot_latest ADD PRIMARY KEY (robot_key);

INSERT INTO robot_latest (robot_key, time, latitude, longitude, battery_level, battery_voltage, status, seq)
SELECT robot_key, last_seen, latitude, longitude, battery_level::text::double precision,
       battery_voltage::text::double precision, status, seq
FROM robots
WHERE last_seen IS NOT NULL;

ALTER TABLE robots
    DROP COLUMN last_seen,
    DROP COLUMN latitude,
    DROP COLUMN longitude,
    DROP COLUMN battery_level,
    DROP COLUMN battery_voltage,
    DROP COLUMN status,
    DROP COLUMN seq;
