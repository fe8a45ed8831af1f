"""``python -m benchmarks.fleet_profile OUT``: py-spy over single readings from 1,000 robots, each with its own
token, against the API as ``make up`` starts it; then ``python -m benchmarks.layers OUT <µs a POST>``.

The fleet's POSTs run twice: the first pass warms the server, the second is recorded (250 Hz, every worker).
Needs the ``fleet_bench`` database (``make bench`` creates it).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time

from rich.console import Console

from benchmarks.dataset import generate_rows
from benchmarks.ingest import FLEET_SINGLE, Bench, Plan
from benchmarks.servers import api_server, deployed_api_server

PLAN = Plan(robots=1000, per_robot=70, single_requests=70_000)
RECORD_S = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="where py-spy writes its raw profile")
    args = parser.parse_args()
    bench = Bench(PLAN, Console(width=200))
    bench.rows = generate_rows(PLAN.robots, PLAN.per_robot)
    asyncio.run(bench.prepare_database())
    with api_server(bench.database_url, 1) as (port, _):
        asyncio.run(bench.provision(port))
    with deployed_api_server(bench.database_url) as (port, pid):
        bench.fleet_pass(port, pid, "warm-up")
        spy = subprocess.Popen(
            [shutil.which("py-spy") or ".venv/bin/py-spy", "record", "--pid", str(pid), "--subprocesses",
             "--nonblocking", "--rate", "250", "--format", "raw", "--duration", str(RECORD_S), "-o", args.output],
        )  # fmt: skip
        time.sleep(1)  # py-spy attaches
        bench.fleet_pass(port, pid, "profiled")
        spy.wait()
    profiled = bench.results[-1]
    us = profiled.cpu_s.get("api", 0.0) / profiled.rows * 1e6
    print(f"{FLEET_SINGLE}: API CPU {us:.0f} µs a POST; python -m benchmarks.layers {args.output} {us:.0f}")


if __name__ == "__main__":
    main()
