"""``python -m simulator``: run a fleet against the API with a live display, then verify nothing was lost."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from dataclasses import asdict, fields, replace

import asyncpg
import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.delivery import Stats
from simulator.keys import local_admin_key
from simulator.run import SimConfig, Simulation

DISPLAY_INTERVAL_S = 0.5
PLAIN_INTERVAL_S = 5.0


def parse_args(argv: list[str] | None = None) -> SimConfig:
    d = SimConfig()
    p = argparse.ArgumentParser(prog="simulate", description=__doc__)
    p.add_argument("--url", default=d.url)
    p.add_argument("--robots", type=int, default=d.robots)
    p.add_argument("--rate", type=float, default=d.rate_hz, help="readings per robot per second")
    p.add_argument("--batch", type=int, default=d.batch, help="readings per POST in batch mode")
    p.add_argument("--single", action="store_true", help="one reading per POST")
    p.add_argument("--duration", type=float, default=d.duration_s, help="seconds; 0 runs until Ctrl-C")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--centre", default=",".join(map(str, d.centre)), help="site centre as LAT,LON")
    p.add_argument("--connections", type=int, default=d.connections)
    p.add_argument("--queue", type=int, default=d.queue_size, help="payloads waiting for acknowledgement")
    p.add_argument("--no-verify", action="store_true", help="skip the end check that nothing was lost")
    p.add_argument(
        "--admin-key",
        default=os.environ.get("FLEET_ADMIN_KEY"),
        help="operator key with admin and read scopes (default: $FLEET_ADMIN_KEY); robots are provisioned with it. "
        "Without one the API must run with FLEET_AUTH=off",
    )
    p.add_argument(
        "--local-key",
        action="store_true",
        help="without --admin-key: make a key on the local database (FLEET_DATABASE_URL) for this run and revoke it "
        "at the end; `make simulate` passes it",
    )
    p.add_argument(
        "--incidents",
        action="store_true",
        help="script incidents (a flat battery, a silent robot, one leaving the site, a fault, one stuck) with demo "
        "alert rules that catch them, and print the alert events",
    )
    p.add_argument(
        "--transport",
        choices=("direct", "http", "mqtt"),
        default=d.transport,
        help="direct: the simulator's own HTTP sender; http or mqtt: each robot sends through the robot client "
        "(fleet_robot) with its own SQLite outbox (needs --admin-key: robots use their own tokens)",
    )
    p.add_argument("--mqtt-url", default=d.mqtt_url, help="the broker, for --transport mqtt")
    p.add_argument("--outbox-dir", default=d.outbox_dir, help="where each robot's outbox file goes")
    a = p.parse_args(argv)
    if a.transport != "direct" and not a.admin_key and not a.local_key:
        p.error("--transport http or mqtt needs --admin-key (or FLEET_ADMIN_KEY): each robot uses its own token")
    lat, lon = (float(part) for part in a.centre.split(","))
    return SimConfig(
        url=a.url,
        robots=a.robots,
        rate_hz=a.rate,
        batch=a.batch,
        single=a.single,
        duration_s=a.duration,
        seed=a.seed,
        centre=(lat, lon),
        connections=a.connections,
        queue_size=a.queue,
        verify=not a.no_verify,
        admin_key=a.admin_key,
        incidents=a.incidents,
        transport=a.transport,
        mqtt_url=a.mqtt_url,
        outbox_dir=a.outbox_dir,
        local_key=a.local_key and not a.admin_key,
    )


def render(sim: Simulation) -> Table:
    target = sim.config.mqtt_url if sim.config.transport == "mqtt" else sim.config.url
    table = Table(title=f"{sim.config.robots} robots -> {target} ({sim.config.transport})", show_header=True)
    for name in ("sent", "acknowledged", "duplicates", "retried", "rejected", "dropped", "queued", "rows/s"):
        table.add_column(name, justify="right")
    s = sim.stats
    table.add_row(
        *(str(v) for v in (s.sent, s.acknowledged, s.duplicates, s.retried, s.rejected, s.dropped)),
        str(sim.queue.qsize()),
        f"{sim.rows_per_s():,.0f}",
    )
    return table


def summary(stats: Stats, elapsed_s: float) -> str:
    values = asdict(stats)
    lines = [f"  {f.name:<15}{values[f.name]}" for f in fields(stats)]
    return "\n".join(["summary:", *lines, f"  {'elapsed_s':<15}{elapsed_s:.1f}"])


async def main_async(config: SimConfig, console: Console, sim: Simulation) -> Stats:
    sim.on_alert = console.print  # above the live table, which rich redraws below
    if console.is_terminal:
        with Live(render(sim), console=console, refresh_per_second=1 / DISPLAY_INTERVAL_S) as live:
            stats = await sim.run(on_tick=lambda s: live.update(render(s)))
            live.update(render(sim))  # the last partial batches and retries finish after the last tick
            return stats
    last = [0.0]

    def log_progress(s: Simulation) -> None:
        if time.monotonic() - last[0] >= PLAIN_INTERVAL_S:
            last[0] = time.monotonic()
            st = s.stats
            console.print(
                f"sent={st.sent} acknowledged={st.acknowledged} duplicates={st.duplicates} retried={st.retried} "
                f"rejected={st.rejected} dropped={st.dropped} rows/s={s.rows_per_s():,.0f}"
            )

    return await sim.run(on_tick=log_progress)


def credential_refusal(config: SimConfig) -> str | None:
    """Why the API will refuse this run's requests, asked once before it starts (an empty batch stores nothing);
    None if it will not. Without it, a run without a key printed one 401 warning per reading."""
    headers = {"Authorization": f"Bearer {config.admin_key}"} if config.admin_key else {}
    if config.admin_key:
        response = httpx.get(config.url + "/admin/credentials", headers=headers, timeout=10)
    else:
        response = httpx.post(config.url + "/telemetry/", json=[], timeout=10)
    if response.status_code == 401 and not config.admin_key:
        return (
            f"the API at {config.url} wants a credential (401): run `make admin-key`, then "
            "FLEET_ADMIN_KEY=<the key> make simulate (or --admin-key)"
        )
    if response.status_code in (401, 403):
        return f"the API refused the key ({response.status_code}): it needs the admin and read scopes"
    return None


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console(soft_wrap=True)
    try:
        httpx.get(config.url + "/", timeout=5)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the API at {config.url}: {exc!r}. Is it up (make up)?[/red]")
        return 1
    if not config.local_key:
        return simulate(config, console)
    try:
        with local_admin_key() as key:
            console.print("a key for this run was made on the local database; it is revoked when the run ends")
            return simulate(replace(config, admin_key=key), console)
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]no key could be made on the local database ({exc!r}): pass --admin-key[/red]")
        return 1


def simulate(config: SimConfig, console: Console) -> int:
    if (refusal := credential_refusal(config)) is not None:
        console.print(f"[red]{refusal}[/red]")
        return 1
    started = time.monotonic()
    try:
        sim = Simulation(config)
        stats = asyncio.run(main_async(config, console, sim))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    console.print(summary(stats, time.monotonic() - started))
    if sim.refused is not None:
        console.print(f"[red]{sim.refused}[/red]")
        return 1
    if stats.generated and not stats.acknowledged:
        console.print(f"[red]nothing was acknowledged: is the API at {config.url} up, and the key right?[/red]")
        return 1
    if stats.lost:
        console.print(f"[red]LOST {stats.lost} acknowledged readings[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
