"""Benchmark results: the shared command line, markdown tables and a bar chart."""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import matplotlib.ticker
from rich.console import Console

from benchmarks.machine import machine_line

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FLEET_ROBOTS = "1,000"  # the plans' fleet: every robot provisioned through the admin API
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
    # A quick run is a check, not a result: it must not overwrite the full run that docs/benchmarks.md quotes.
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
    spread = summary.get("spread", [])
    if spread and max(row["runs"] for row in spread) > 1:
        lines += [
            "",
            "Spread over the repetitions (the figures below and the chart use each configuration's median run):",
            "",
            "| method | configuration | runs | min rows/s | median | max | (max - min) / median |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['method']} | {r['config']} | {r['runs']} | {r['min']:,} | {r['median']:,} | {r['max']:,} | "
            f"{r['spread_pct']} % |"
            for r in spread
        ]
    if rollups := summary.get("rollups"):
        lines += [
            "",
            f"Rollups, side by side against {rollups['off_rows_per_s']:,} rows/s with neither the minute "
            "aggregate's refreshes nor the quarter hours' passes:",
        ]
        lines += [
            f"- {mode}: {m['rows_per_s']:,} rows/s ({m['ratio']:.3f}), PostgreSQL's CPU {m['postgres_us_per_row']} "
            "µs more per row"
            for mode, m in rollups["modes"].items()
        ]
    if alert := summary.get("alert_rules"):
        lines += [
            "",
            f"Alert rules: batch ingest with 100 rules (1,000 robots) at {alert['with_rules_rows_per_s']:,} rows/s "
            f"against {alert['without_rows_per_s']:,} without, side by side: {alert['ratio']:.3f} "
            f"({'within' if alert['within_10_pct'] else 'NOT within'} 10 %).",
        ]
    ratios, targets = summary["ratios"], summary["targets"]
    lines += [
        "",
        f"- API batch / COPY ceiling: **{ratios['api_batch_over_copy_ceiling']}** (target 0.75)",
        (
            f"- API batch / InfluxDB: **{ratios['api_batch_over_influxdb']}** (target 1.2)"
            if ratios["api_batch_over_influxdb"] is not None
            else f"- API batch / InfluxDB: skipped ({summary.get('influxdb_skipped') or 'not measured'})"
        ),
        f"- API batch CPU per row: **{summary.get('api_batch_cpu_us_per_row')} µs** (target 1.5)",
        f"- API single: **{summary['api_single_rows_per_s']:,} rows/s**, p99 **{summary['api_single_p99_ms']} ms** "
        "(targets 20,000 rows/s, 20 ms)",
        (
            f"- InfluxDB single: **{summary['influxdb_single_rows_per_s']:,} rows/s**, p99 "
            f"**{summary.get('influxdb_single_p99_ms')} ms**; API single / InfluxDB single: "
            f"**{summary['ratios'].get('api_single_over_influxdb_single')}**"
            if summary.get("influxdb_single_rows_per_s")
            else f"- InfluxDB single: skipped ({summary.get('influxdb_skipped') or 'not measured'})"
        ),
        *(
            f"- Single readings from {FLEET_ROBOTS} robots with their own tokens, `make up`'s defaults, {temperature}: "
            f"**{m['rows_per_s']:,} rows/s**, p50 {m['p50_ms']} ms, p99 **{m['p99_ms']} ms**, API CPU "
            f"{m['api_cpu_us_per_post']} µs a POST; / InfluxDB single: **{m['over_influxdb_single'] or 'skipped'}** "
            "(targets 0.5, 20 ms)"
            for temperature, m in (summary.get("fleet_single") or {}).items()
        ),
        *(
            f"- Single readings over MQTT from {FLEET_ROBOTS} robots, QoS 1, each acknowledged by the service after "
            f"commit, {pace}: **{m['rows_per_s']:,} rows/s**, p50 {m['p50_ms']} ms, p99 **{m['p99_ms']} ms** "
            f"(publish to ack), CPU µs a reading {m['cpu_us_per_reading']}; / InfluxDB single: "
            f"**{m['over_influxdb_single'] or 'skipped'}** (targets 2 as fast as acked, 50 ms)"
            for pace, m in (summary.get("mqtt_single") or {}).items()
        ),
        f"- every phase's row count matched: **{summary['rows_verified']}**",
        "",
        "Targets met: "
        + ", ".join(f"{name}: {'yes' if met else 'no' if met is False else 'n/a'}" for name, met in targets.items()),
        "",
    ]
    return "\n".join(lines)


METHOD_COLOURS = {
    "COPY": "#4d4d4d",
    "API batch": "#1f77b4",
    "API single": "#2ca02c",
    "API single, fleet": "#98df8a",
    "MQTT single, fleet": "#9467bd",
    "InfluxDB": "#d62728",
    "InfluxDB single": "#ff9896",
}
PEERS = ("COPY", "API batch", "API single", "API single, fleet", "MQTT single, fleet", "InfluxDB", "InfluxDB single")


def ingest_chart(summary: dict[str, Any], path: Path) -> None:
    """Throughput per method (its best configuration) with the target lines, and the single-POST latencies."""
    # Each method's best configuration, by its median run when phases were repeated (authentication on).
    runs = [run for run in summary["runs"] if "auth off" not in run["config"]]
    medians: dict[tuple[str, str], dict[str, Any]] = {}
    for key in {(run["method"], run["config"]) for run in runs}:
        group = sorted((r for r in runs if (r["method"], r["config"]) == key), key=lambda r: r["rows_per_s"])
        medians[key] = group[(len(group) - 1) // 2] | {"low": group[0]["rows_per_s"], "high": group[-1]["rows_per_s"]}
    best: dict[str, dict[str, Any]] = {}
    for (method, _), median in medians.items():
        if median["rows_per_s"] > best.get(method, {}).get("rows_per_s", -1):
            best[method] = median
    fig, (ax, lat) = plt.subplots(1, 2, figsize=(14, 6.5), gridspec_kw={"width_ratios": [3, 1.3]})
    thousands = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    for i, method in enumerate(PEERS):
        run = best.get(method)
        if run is None:  # a peer that was not measured is shown as such, not left out
            skipped = summary.get("influxdb_skipped") if method.startswith("InfluxDB") else None
            # InfluxDB is skipped when it is not installed; other rows are missing from runs made before they were.
            head = "skipped" if skipped else "not in this run"
            note = "\n".join([head, *textwrap.wrap(skipped or "", 24)[:3]])
            ax.text(
                i, 0.5, note, ha="center", va="center", fontsize=8, color="#666", transform=ax.get_xaxis_transform()
            )
            continue
        spread = [[run["rows_per_s"] - run["low"]], [run["high"] - run["rows_per_s"]]]  # min..max of the repetitions
        bar = ax.bar(
            i,
            run["rows_per_s"],
            yerr=spread,
            capsize=4,
            color=METHOD_COLOURS[method],
            label=f"{method} ({run['config']})",
        )
        ax.bar_label(bar, labels=[f"{run['rows_per_s']:,}"], fontsize=8)
    ceiling, influx = summary["copy_ceiling_rows_per_s"], summary.get("influxdb_rows_per_s")
    # The target lines are named in the legend, not beside the lines: labels there covered the bars' own figures.
    ax.axhline(0.75 * ceiling, color=METHOD_COLOURS["API batch"], ls="--", lw=1, label="target: API batch 0.75 x COPY")
    if influx:
        ax.axhline(
            1.2 * influx, color=METHOD_COLOURS["InfluxDB"], ls=":", lw=1, label="target: API batch 1.2 x InfluxDB"
        )
    ax.axhline(20_000, color=METHOD_COLOURS["API single"], ls="--", lw=1, label="target: API single 20,000 rows/s")
    ax.set_xticks(range(len(PEERS)), [method.replace(", ", ",\n") for method in PEERS], fontsize=9)
    ax.set_xlim(-0.6, len(PEERS) - 0.4)
    ax.set_yscale("log")  # single POSTs and batches differ by two orders of magnitude
    ax.set_ylim(1000, 2 * ceiling)
    ax.yaxis.set_major_formatter(thousands)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("rows/s, best configuration, log scale (higher is better)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # below: bars stay clear
    quantiles = ["p50", "p95", "p99"]
    singles = {method: best.get(method) for method in ("API single", "API single, fleet", "MQTT single, fleet")}
    # MQTT at a robot's pace too: its latency is the one a fleet sees (the best run above is the one as fast as acked).
    paced = [m for (method, config), m in medians.items() if method == "MQTT single, fleet" and "Hz a robot" in config]
    singles["MQTT single, fleet, paced"] = paced[0] if paced else None
    singles["InfluxDB single"] = best.get("InfluxDB single")
    width = 0.8 / len(singles)
    for index, (method, single) in enumerate(singles.items()):
        if single is None or single["p99_ms"] is None:
            continue
        xs = [i + (index - (len(singles) - 1) / 2) * width for i in range(len(quantiles))]
        values = [single[f"{q}_ms"] for q in quantiles]
        pace = single["config"].split(", ")[3] if method.endswith("paced") else ""
        colour = METHOD_COLOURS[method.removesuffix(", paced")]
        hatch = "//" if pace else None
        label = f"MQTT single, fleet, {pace}" if pace else method
        bars = lat.bar(xs, values, width=width, color=colour, hatch=hatch, edgecolor="white", label=label)
        lat.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=6, rotation=90, padding=2)
    lat.set_xticks(range(len(quantiles)), quantiles)
    lat.axhline(20, color="#d62728", ls="--", lw=1, label="POST p99 target: 20 ms")
    lat.axhline(50, color=METHOD_COLOURS["MQTT single, fleet"], ls=":", lw=1, label="MQTT p99 target: 50 ms")
    lat.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))  # below: the tall bars stay readable
    lat.set_ylabel("ms (lower is better)")
    lat.set_title("single-reading latency\n(POST; MQTT: publish to ack)", fontsize=9)
    fig.suptitle(
        f"Ingest, {summary['mode']} run, side by side: {summary['machine']['cpu_count']} CPUs, "
        f"{summary['machine']['cpu_model']}",
        fontsize=9,
    )
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
        "Side by side: the row store (warm), then every chunk in the columnstore: the first call after PostgreSQL "
        "restarted and the OS page cache dropped (cold), then warm.",
        "",
        "| query | calls | row store p50 ms | p99 ms | columnstore cold ms | p50 ms | p99 ms | target p99 | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows_before = {q["query"]: q for q in summary.get("row_store", {}).get("queries", [])}
    for q in summary["queries"]:
        target = f"< {q['target_p99_ms']:g} ms" if q["target_p99_ms"] is not None else ""
        before = rows_before.get(q["query"], {})
        lines.append(
            f"| {q['query']} | {q['reps']} | {before.get('p50_ms', '')} | {before.get('p99_ms', '')} | "
            f"{q.get('cold_ms', '')} | {q['p50_ms']} | {q['p99_ms']} | {target} | {_verdict(q['met'])} |"
        )
    if row_store := summary.get("row_store"):
        fleet_before = ", ".join(f"{p['query']} p50 {p['rollup_p50_ms']} ms" for p in row_store["fleet_rollup"])
        lines += [
            "",
            f"On the row store, from the rollups: {row_store['buckets_rollup']['query']} p50 "
            f"{row_store['buckets_rollup']['rollup_p50_ms']} ms, p99 {row_store['buckets_rollup']['rollup_p99_ms']} "
            f"ms; {fleet_before}. Converting {summary['columnstore_chunks']} chunks took {summary['convert_s']} s.",
        ]
    if rollup := summary.get("buckets_raw_vs_rollup"):
        lines += [
            "",
            f"{rollup['query']}, {rollup['reps']} robots: from the readings p50 {rollup['raw_p50_ms']} ms, "
            f"p99 {rollup['raw_p99_ms']} ms; from the rollup p50 {rollup['rollup_p50_ms']} ms, p99 "
            f"{rollup['rollup_p99_ms']} ms (target 50 ms); the same readings per bucket: {rollup['same_counts']}.",
        ]
    if pairs := summary.get("fleet_raw_vs_rollup"):
        lines += [
            "",
            "| whole-fleet question (SQL, same connection) | calls | from the readings p50 ms | from the rollup p50 ms "
            "| rollup max ms | same answers |",
            "|---|---:|---:|---:|---:|---|",
            *(
                f"| {p['query']} | {p['reps']} | {p['raw_p50_ms']} | {p['rollup_p50_ms']} | {p['rollup_max_ms']} "
                f"| {p['same_answers']} |"
                for p in pairs
            ),
        ]
    if upkeep := summary.get("rollup_pass"):
        lines += [
            "",
            f"A rollup pass once running (the data's last 10 s, {upkeep['readings']:,} readings, stored after their "
            f"quarter hours were rolled up): {upkeep['append_ms']} ms; rolling each robot's current quarter hour up "
            f"again instead: {upkeep['periods_again_ms']} ms.",
        ]
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
