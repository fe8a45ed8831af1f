-- Liveness by the server's clock: when the server received each robot's latest reading. "Newer wins" ranks
-- readings by min(timestamp, received_at), so this is also what keeps a future-stamped reading from freezing the
-- state. Existing rows get their reading's time (never later than now) as the best available stand-in.
ALTER TABLE robot_latest ADD COLUMN received_at timestamptz;
UPDATE robot_latest SET received_at = least(time, now());
ALTER TABLE robot_latest ALTER COLUMN received_at SET NOT NULL;
