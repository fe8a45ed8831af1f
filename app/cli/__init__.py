"""The command line: `python -m app` serves the API (uvicorn, its limits, the metrics directory); admin and migrate."""
