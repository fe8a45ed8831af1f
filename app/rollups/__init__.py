"""The rollups behind wide buckets and fleet-wide questions, and the data lifecycle (retention)."""
