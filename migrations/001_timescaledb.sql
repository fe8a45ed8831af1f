-- TimescaleDB must be in shared_preload_libraries; the extension itself is created once per database.
CREATE EXTENSION IF NOT EXISTS timescaledb;
