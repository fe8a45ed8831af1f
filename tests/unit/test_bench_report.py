"""The ingest benchmark's summary and report: the fleet's passes against InfluxDB, and a peer that was skipped."""

from __future__ import annotations

from typing import Any

from benchmarks.ingest import FLEET_SINGLE, INFLUX_SINGLE, QUICK, Measurement, summarise
from benchmarks.report import ingest_markdown

MACHINE = {"cpu_count": 2, "cpu_model": "test", "memory_gib": 1, "os": "test", "postgresql": "15", "timescaledb": "2"}
FLEET = "1/POST, 64 conn, make up's defaults (2 worker(s))"


def runs(influx: bool) -> list[Measurement]:
    measured = [
        Measurement("COPY", "2 conn", 1_000_000, 2.0, True),
        Measurement("API batch", "1000/POST, 32 conn, 2 worker(s)", 1_000_000, 5.0, True, {"api": 4.0}),
        Measurement("API single", "1/POST, 64 conn, 2 worker(s)", 35_000, 5.0, True, {}, 9.0, 15.0, 20.0),
        Measurement(FLEET_SINGLE, f"{FLEET}, cold", 35_000, 7.0, True, {"api": 6.0}, 12.0, 20.0, 30.0),
        Measurement(FLEET_SINGLE, f"{FLEET}, warm", 35_000, 5.0, True, {"api": 5.6}, 9.0, 15.0, 19.0),
    ]
    if influx:
        measured.append(Measurement(INFLUX_SINGLE, "1/POST, 64 conn", 35_000, 2.5, True, {}, 3.0, 8.0, 12.0))
    return measured


def report(influx: bool) -> tuple[dict[str, Any], str]:
    summary = summarise(MACHINE, QUICK, runs(influx), None if influx else "influxd is not installed")
    summary["mode"] = "quick"
    return summary, ingest_markdown(summary)


def test_the_fleets_warm_pass_is_measured_against_influxdbs_single_points() -> None:
    summary, text = report(influx=True)
    warm = summary["fleet_single"]["warm"]
    assert (warm["rows_per_s"], warm["over_influxdb_single"], warm["api_cpu_us_per_post"]) == (7000, 0.5, 160.0)
    assert summary["targets"]["fleet single >= 0.5 x influxdb single"] is True
    assert summary["targets"]["fleet single p99 <= 20 ms"] is True
    assert summary["fleet_single"]["cold"]["over_influxdb_single"] == 0.357
    assert "warm: **7,000 rows/s**" in text and "InfluxDB single: **14,000 rows/s**" in text


def test_a_skipped_influxdb_is_reported_as_skipped_not_as_zero() -> None:
    summary, text = report(influx=False)
    assert summary["targets"]["fleet single >= 0.5 x influxdb single"] is None
    assert "InfluxDB single: skipped (influxd is not installed)" in text
    assert "API batch / InfluxDB: skipped (influxd is not installed)" in text
    assert "**0 rows/s**" not in text and "None" not in text
