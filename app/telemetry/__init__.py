"""Telemetry: decoding, the group commit, the latest state, the live stream and the history, with their store."""
