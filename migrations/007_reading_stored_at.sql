-- When each reading was stored: the start of the flush transaction that wrote it, filled in by PostgreSQL (COPY
-- leaves the column out, so the API encodes nothing more per row). The live stream's event ids are positions in
-- this order, so a client that reconnects with Last-Event-ID is sent what it missed from here. Rows stored before
-- this migration have none (NULL): they are older than any stream a client can resume.
ALTER TABLE telemetry ADD COLUMN stored_at timestamptz;
ALTER TABLE telemetry ALTER COLUMN stored_at SET DEFAULT transaction_timestamp();

-- BRIN, not B-tree: rows arrive in stored order, so block range summaries are tight, and maintaining one costs COPY
-- almost nothing. A range not yet summarised is simply scanned, and that is where the newest rows are anyway.
CREATE INDEX telemetry_stored_at ON telemetry USING brin (stored_at) WITH (autosummarize = on);
