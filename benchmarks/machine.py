"""What the benchmarks ran on, and CPU-time accounting per process group, read from /proc."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _os_name() -> str:
    debian = Path("/etc/debian_version")
    return f"Debian {debian.read_text().strip()}" if debian.exists() else platform.platform()


async def describe_machine(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
        tsdb = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        license_ = await conn.fetchval("SHOW timescaledb.license")
    finally:
        await conn.close()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "timescaledb": f"{tsdb} ({license_})",
    }


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu_count']} x {machine['cpu_model']}, {machine['memory_gib']} GiB, {machine['os']}, "
        f"PostgreSQL {machine['postgresql']}, TimescaleDB {machine['timescaledb']}"
    )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


class CpuMeter:
    """CPU seconds spent by named process groups between start() and stop().

    Each group is a function listing its pids, asked at both ends: processes started in between (a new
    PostgreSQL backend, say) count from zero; one that exits in between is not counted.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._before: dict[int, float] = {}

    def start(self) -> None:
        self._before = {pid: process_cpu_s(pid) for pids in self.groups.values() for pid in pids()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, pids in self.groups.items():
            pid_set = set(pids()) | {pid for pid in self._before if pid in set(pids())}
            used[name] = round(sum(process_cpu_s(pid) - self._before.get(pid, 0.0) for pid in pid_set), 2)
        return used
