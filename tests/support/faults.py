"""Faults for the suites that break things: an API process on a fixed port that can be killed and restarted, and
what a crash, an OOM kill or a hung host does to the project-local database (scripts/db.sh)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from benchmarks.servers import ROOT, _wait_http, free_port
from tests.support.database import run_db_script

FREEZE_S = 15  # as the review's fault run


class ApiProcess:
    """``python -m app`` on a fixed port, so that a restarted process is found where clients left it."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "FLEET_DATABASE_URL": database_url,
            "FLEET_PORT": str(self.port),
            "FLEET_AUTH": "off",
            "FLEET_MIGRATE_ON_START": "false",
            "FLEET_FLUSH_TIMEOUT_MS": "3000",
            "FLEET_LOG_LEVEL": "warning",
            # One process, as each crash models: with several workers, kill -9 of uvicorn's supervisor would leave
            # its workers serving on the port (a worker outlives its killed parent).
            "FLEET_WORKERS": "1",
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=self.env)
        _wait_http(self.url + "/", self.process, ok=(200, 503))

    def stop(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)


def database_up() -> None:
    for _ in range(20):  # after kill -9, orphaned backends may hold shared memory for a moment
        if run_db_script("up").returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the database did not come back")


def restart_database() -> None:
    assert run_db_script("down").returncode == 0
    database_up()


def crash_database() -> None:
    assert run_db_script("crash").returncode == 0
    database_up()


def kill_database() -> None:
    assert run_db_script("kill9").returncode == 0
    database_up()


def freeze_database() -> None:
    assert run_db_script("freeze").returncode == 0
    try:
        time.sleep(FREEZE_S)
    finally:
        assert run_db_script("thaw").returncode == 0
