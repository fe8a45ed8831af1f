"""What every feature stands on: settings, the pool, migrations, notices, background jobs, limits, metrics, logs,
time ranges and cursors."""
