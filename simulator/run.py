"""One simulation run: the fleet produces readings in real time, senders deliver them, and the end verifies."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from simulator.clients import ClientFleet
from simulator.delivery import Deliverer, Stats
from simulator.fleet import build_fleet
from simulator.incidents import Incidents, describe_alert_event, ensure_demo_rules

# body, the (robot_id, timestamp) keys it carries, and the robot's token (None without credentials)
Payload = tuple[bytes, list[tuple[str, datetime]], str | None]


def default_api_url(environ: Mapping[str, str] | None = None) -> str:
    """FLEET_API_URL, else the API that `make up` started (FLEET_HOST and FLEET_PORT, as scripts/api.sh reads)."""
    env = os.environ if environ is None else environ
    if url := env.get("FLEET_API_URL"):
        return url
    return f"http://{env.get('FLEET_HOST', '127.0.0.1')}:{env.get('FLEET_PORT', '8000')}"


@dataclass(frozen=True)
class SimConfig:
    url: str = field(default_factory=default_api_url)
    robots: int = 50
    rate_hz: float = 1.0  # readings per robot per second
    batch: int = 10  # readings per POST in batch mode
    single: bool = False  # one reading per POST
    duration_s: float = 60.0  # 0: until interrupted
    seed: int = 42
    centre: tuple[float, float] = (37.4275, -122.1697)
    connections: int = 16
    queue_size: int = 10_000  # payloads waiting to be acknowledged
    timeout_s: float = 10.0
    drain_s: float = 30.0  # after the end, how long unacknowledged payloads keep being retried
    verify: bool = True
    # An operator key with the admin and read scopes (`make admin-key`): each robot is provisioned through the
    # admin API and sends with its own token. None: no credentials (an API running with FLEET_AUTH=off).
    admin_key: str | None = None
    local_key: bool = False  # no key given: make one on the local database for this run (simulator.keys)
    # Scripted incidents (simulator.incidents) and the demo alert rules that catch them; alert events are printed.
    incidents: bool = False
    incident_offset_s: float = 0.0  # where in the incident cycle the run starts (tests start at a fault)
    # "direct": the simulator's own HTTP sender (an in-memory queue, batches of ``batch``). "http" or "mqtt": each
    # robot sends through the robot client (fleet_robot), with an SQLite outbox per robot in ``outbox_dir``.
    transport: str = "direct"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    outbox_dir: str = ".run/outboxes"


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.fleet = build_fleet(config.robots, config.centre, config.seed)
        self.queue: asyncio.Queue[Payload] = asyncio.Queue(maxsize=config.queue_size)
        self.acknowledged: dict[str, set[datetime]] = defaultdict(set)
        self.tokens: dict[str, str] = {}  # robot_id -> its token, when the API wants credentials
        self.started_at = time.monotonic()
        self._encode = msgspec.json.Encoder().encode
        self.incidents = Incidents(self.fleet, config.centre) if config.incidents else None
        self.on_alert: Callable[[str], None] = print  # where alert events go (the display replaces it)
        # Set at the first 401: the run stops producing, and what is queued is not sent (it would be refused too).
        self.refused: str | None = None
        self.clients: ClientFleet | None = None  # robots sending through fleet_robot (config.transport)

    def rows_per_s(self) -> float:
        return self.stats.acknowledged / max(1e-9, time.monotonic() - self.started_at)

    async def run(self, on_tick: Callable[[Simulation], None] | None = None) -> Stats:
        config = self.config
        limits = httpx.Limits(max_connections=config.connections, max_keepalive_connections=config.connections)
        headers = {"Authorization": f"Bearer {config.admin_key}"} if config.admin_key else {}
        async with httpx.AsyncClient(
            base_url=config.url, limits=limits, timeout=config.timeout_s, headers=headers
        ) as client:
            if config.admin_key:
                await self.provision(client)
            watcher = None
            if self.incidents is not None:
                created = await ensure_demo_rules(client, config.centre)
                self.on_alert(f"incidents on: {created} demo alert rules created; alert events follow")
                watcher = asyncio.create_task(self.watch_alerts(client))
            stop_at = asyncio.get_running_loop().time() + config.duration_s if config.duration_s else None
            if config.transport != "direct":
                await self._run_clients(stop_at, on_tick)
                if config.verify:
                    self.stats.lost = await self.count_lost(client)
                if watcher:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                return self.stats
            deliverer = Deliverer(client, self.stats, rng=random.Random(config.seed))
            deadline = stop_at + config.drain_s if stop_at else None
            senders = [asyncio.create_task(self._send(deliverer, deadline)) for _ in range(config.connections)]
            try:
                await self._produce(stop_at, on_tick)
                # Wait for what is queued to be delivered, retried, or given up at the deadline.
                await self.queue.join()
            finally:
                for task in [*senders, *([watcher] if watcher else [])]:
                    task.cancel()
                await asyncio.gather(*senders, *([watcher] if watcher else []), return_exceptions=True)
            if config.verify:
                self.stats.lost = await self.count_lost(client)
        return self.stats

    async def _run_clients(self, stop_at: float | None, on_tick: Callable[[Simulation], None] | None) -> None:
        """Every robot records into its outbox and its client sends it; then wait for the outboxes to empty."""
        config = self.config
        self.clients = clients = ClientFleet(
            config.transport, config.url, config.mqtt_url, Path(config.outbox_dir), self.tokens
        )
        try:
            await self._produce(stop_at, on_tick)
            await asyncio.to_thread(clients.drain, config.drain_s)
            clients.fill(self.stats)
            self.acknowledged = defaultdict(set, clients.acknowledged())
        finally:
            self.stats.unacknowledged = await asyncio.to_thread(clients.close)

    async def provision(self, client: httpx.AsyncClient) -> None:
        """Provision every robot through the admin API; each then sends with its own token."""
        semaphore = asyncio.Semaphore(self.config.connections)

        async def provision_robot(robot_id: str) -> None:
            async with semaphore:
                response = await client.post("/admin/robots", json={"robot_id": robot_id, "tags": ["simulated"]})
                if response.status_code == 409:  # provisioned by an earlier run: a new token for this one
                    response = await client.post(f"/admin/robots/{quote(robot_id, safe='')}/tokens")
            response.raise_for_status()
            self.tokens[robot_id] = response.json()["token"]

        await asyncio.gather(*(provision_robot(robot.robot_id) for robot in self.fleet))

    async def watch_alerts(self, client: httpx.AsyncClient) -> None:
        """Print every alert transition the API streams, until cancelled."""
        params = {"events": ["alert.opened", "alert.acknowledged", "alert.resolved"]}
        while True:
            try:
                async with client.stream("GET", "/telemetry/stream", params=params, timeout=None) as response:
                    event_type = ""
                    async for line in response.aiter_lines():
                        if line.startswith("event:"):
                            event_type = line.partition(":")[2].strip()
                        elif line.startswith("data:") and event_type.startswith("alert."):
                            self.on_alert(describe_alert_event(event_type, line.partition(":")[2].strip()))
            except httpx.HTTPError as exc:
                self.on_alert(f"alert stream interrupted ({exc!r}); reconnecting")
            await asyncio.sleep(1.0)

    async def _produce(self, stop_at: float | None, on_tick: Callable[[Simulation], None] | None) -> None:
        loop = asyncio.get_running_loop()
        dt_s = 1.0 / self.config.rate_hz
        per_post = 1 if self.config.single else self.config.batch
        pending: dict[str, list[tuple[dict[str, object], datetime]]] = defaultdict(list)
        next_tick = started = loop.time()
        while (stop_at is None or loop.time() < stop_at) and self.refused is None:
            now = datetime.now(UTC)
            recorded: list[dict[str, Any]] = []
            for robot in self.fleet:
                robot.step(dt_s)
            elapsed_s = loop.time() - started + self.config.incident_offset_s
            silent = self.incidents.apply(elapsed_s) if self.incidents else frozenset()
            for robot in self.fleet:
                if robot.robot_id in silent:
                    continue
                self.stats.generated += 1
                if self.clients is not None:
                    recorded.append(robot.reading(now))
                    continue
                pending[robot.robot_id].append((robot.reading(now), now))
                if len(pending[robot.robot_id]) >= per_post:
                    self._enqueue(pending.pop(robot.robot_id))
            if self.clients is not None:
                await asyncio.to_thread(self.clients.record, recorded)
                self.clients.fill(self.stats)
            if on_tick:
                on_tick(self)
            next_tick += dt_s
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
        for readings in pending.values():  # partial batches at the end still go out
            self._enqueue(readings)

    def _enqueue(self, readings: list[tuple[dict[str, object], datetime]]) -> None:
        docs = [doc for doc, _ in readings]
        body = self._encode(docs[0] if self.config.single else docs)
        keys = [(str(doc["robot_id"]), at) for doc, at in readings]
        try:
            self.queue.put_nowait((body, keys, self.tokens.get(keys[0][0])))
        except asyncio.QueueFull:
            self.stats.dropped += len(readings)  # counted, never hidden

    async def _send(self, deliverer: Deliverer, deadline: float | None) -> None:
        while True:
            body, keys, token = await self.queue.get()
            try:
                if self.refused is not None:
                    self.stats.rejected += len(keys)
                    continue
                outcome = await deliverer.deliver(body, len(keys), deadline, token)
                if outcome.acknowledged:
                    for robot_id, at in keys:
                        self.acknowledged[robot_id].add(at)
                elif outcome.status == 401:
                    self.refused = "the API refused a credential (401): the run stopped at the first refusal"
            finally:
                self.queue.task_done()

    async def count_lost(self, client: httpx.AsyncClient) -> int:
        """Acknowledged readings that the API does not return: must be 0."""
        semaphore = asyncio.Semaphore(self.config.connections)

        async def lost_for(robot_id: str, expected: set[datetime]) -> int:
            async with semaphore:
                found = await fetch_timestamps(client, robot_id, min(expected), max(expected))
            return len(expected - found)

        counts = await asyncio.gather(*(lost_for(r, ts) for r, ts in self.acknowledged.items() if ts))
        return sum(counts)


async def fetch_timestamps(client: httpx.AsyncClient, robot_id: str, since: datetime, last: datetime) -> set[datetime]:
    params: dict[str, str] = {
        "since": since.isoformat(),
        "until": (last + timedelta(microseconds=1)).isoformat(),
        "limit": "1000",
    }
    found: set[datetime] = set()
    while True:
        response = await client.get(f"/telemetry/{robot_id}", params=params)
        if response.status_code == 404:
            return found
        response.raise_for_status()
        page = response.json()
        found.update(datetime.fromisoformat(r["timestamp"]) for r in page["readings"])
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]
