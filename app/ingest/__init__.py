"""The ingest domain: the reading's shape, decoding, group commit, latest state and the commit fan-out."""
