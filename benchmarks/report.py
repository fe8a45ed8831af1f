"""Benchmark results: the shared command line, markdown tables and a bar chart."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from rich.console import Console

from benchmarks.machine import machine_line

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Summary = dict[str, Any]


def run_cli(
    description: str,
    quick_help: str,
    name: str,
    run: Callable[[bool, Console], Summary],
    markdown: Callable[[Summary], str],
    chart: Callable[[Summary, Path], None] | None = None,
) -> None:
    """The benchmarks' shared command line: run, then write NAME.json, NAME.md (and NAME.png)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--output", type=Path, default=None, help=f"where to write {name}.json and the rest")
    args = parser.parse_args()
    # A quick run is a check, not a result: it must not overwrite the full run that the README quotes.
    output: Path = args.output or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    console = Console(soft_wrap=True)
    started = time.monotonic()
    summary = run(args.quick, console)
    summary["mode"] = "quick" if args.quick else "full"
    summary["wall_s"] = round(time.monotonic() - started, 1)
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(summary)
    (output / f"{name}.md").write_text(table)
    if chart is not None:
        chart(summary, output / f"{name}.png")
    console.print(table)
    console.print(f"wrote {output}/{name}.* in {summary['wall_s']} s")


def ingest_markdown(summary: dict[str, Any]) -> str:
    ceiling = summary["copy_ceiling_rows_per_s"]
    lines = [
        f"Ingest benchmark ({summary['mode']}), {summary['generated_at']}",
        "",
        f"Machine: {machine_line(summary['machine'])}",
        "",
        "| method | configuration | rows | rows/s | x COPY ceiling | p50/p95/p99 ms | CPU s by process | verified |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for run in summary["runs"]:
        latency = f"{run['p50_ms']} / {run['p95_ms']} / {run['p99_ms']}" if run["p99_ms"] is not None else ""
        cpu = ", ".join(f"{name} {seconds}" for name, seconds in run["cpu_s"].items())
        lines.append(
            f"| {run['method']} | {run['config']} | {run['rows']:,} | {run['rows_per_s']:,} | "
            f"{run['rows_per_s'] / ceiling:.2f} | {latency} | {cpu} | {'yes' if run['verified'] else 'NO'} |"
        )
    ratios, targets = summary["ratios"], summary["targets"]
    lines += [
        "",
        f"- API batch / COPY ceiling: **{ratios['api_batch_over_copy_ceiling']}** (target 0.75)",
        f"- API batch / InfluxDB: **{ratios['api_batch_over_influxdb']}** (target 1.2)"
        + (f"; InfluxDB skipped: {summary['influxdb_skipped']}" if summary["influxdb_skipped"] else ""),
        f"- API single: **{summary['api_single_rows_per_s']:,} rows/s**, p99 **{summary['api_single_p99_ms']} ms** "
        "(targets 5,000 rows/s, 50 ms)",
        f"- every phase's row count matched: **{summary['rows_verified']}**",
        "",
        "Targets met: "
        + ", ".join(f"{name}: {'yes' if met else 'no' if met is False else 'n/a'}" for name, met in targets.items()),
        "",
    ]
    return "\n".join(lines)


def ingest_chart(summary: dict[str, Any], path: Path) -> None:
    best: dict[str, int] = {}
    for run in summary["runs"]:
        label = f"{run['method']}\n{run['config'].split(', ')[0]}"
        best[label] = max(best.get(label, 0), run["rows_per_s"])
    fig, ax = plt.subplots(figsize=(10, 4.8))
    bars = ax.bar(list(best), list(best.values()), color="#3b6ea5")
    ax.bar_label(bars, labels=[f"{v / 1000:.0f}k" for v in best.values()])
    ax.set_ylabel("rows/s (best configuration)")
    ax.set_title(
        f"Ingest, {summary['mode']} run: {summary['machine']['cpu_count']} CPUs, {summary['machine']['cpu_model']}",
        fontsize=9,
    )
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "yes" if met else "no"


def queries_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"Query benchmark ({summary['mode']}), {summary['generated_at']}: {summary['rows']:,} readings, "
        f"{summary['robots']} robots",
        "",
        f"Machine: {machine_line(summary['machine'])}",
        "",
        "| query | calls | p50 ms | p99 ms | target p99 | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for q in summary["queries"]:
        target = f"< {q['target_p99_ms']:g} ms" if q["target_p99_ms"] is not None else ""
        lines.append(
            f"| {q['query']} | {q['reps']} | {q['p50_ms']} | {q['p99_ms']} | {target} | {_verdict(q['met'])} |"
        )
    influx = summary["influxdb_last"]
    if influx:
        lines += [
            "",
            f"InfluxDB `SELECT last(*) FROM telemetry GROUP BY robot_id` on the same rows: p50 {influx['p50_ms']} ms, "
            f"p99 {influx['p99_ms']} ms; that is **{summary['influxdb_last_over_api_latest_p50']}x** the p50 of "
            "`GET /robots`.",
        ]
    else:
        lines += ["", f"InfluxDB skipped: {summary['influxdb_skipped']}"]
    return "\n".join([*lines, ""])
