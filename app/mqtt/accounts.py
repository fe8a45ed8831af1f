"""The broker's password and ACL files, written from the robots' live tokens, so that a provisioned robot connects
over MQTT with the same identity and token as over HTTP, and a revoked one is turned away.

Mosquitto checks the password at CONNECT and reloads both files on SIGHUP, when it also disconnects any client that
no longer passes them: a revocation reaches a connected robot within one poll.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from app.auth import registry as credentials
from app.auth.tokens import broker_hash
from app.mqtt.messages import ACK, ERRORS, TELEMETRY, TOPIC_ROOT, fits_mqtt
from app.platform.periodic import Periodic
from app.platform.pool import Pool
from app.platform.settings import MqttSettings

PASSWORD_FILE: Final = "passwords"
ACL_FILE: Final = "acl"
PID_FILE: Final = "mosquitto.pid"

log = logging.getLogger(__name__)


def read_secret(path: str) -> str:
    """The service's broker password, from its file (one line, kept from everyone but the service)."""
    secret = Path(path).read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty: it must hold the service's broker password")
    return secret


def render_passwords(service_user: str, service_secret: str, accounts: Sequence[tuple[str, str]]) -> str:
    """The password file: the service's account, then one line per robot that can be a broker user."""
    # A salt derived from the secret, so the same accounts give the same file and nothing is rewritten needlessly.
    salt = hashlib.sha256(b"fleet-broker-salt:" + service_secret.encode()).digest()[:12]
    lines = [f"{service_user}:{broker_hash(service_secret, salt)}"]
    lines += [f"{robot_id}:{hashed}" for robot_id, hashed in accounts if _usable(robot_id, service_user)]
    return "\n".join(lines) + "\n"


def render_acl(service_user: str) -> str:
    """Each robot publishes only on its own telemetry topic and reads only its own answers; the service reads every
    robot's telemetry and writes every robot's answers."""
    return "\n".join(
        [
            "# Written by the fleet service (app/mqtt/accounts.py); changes here are overwritten.",
            f"user {service_user}",
            f"topic read {TOPIC_ROOT}/+/{TELEMETRY}",
            f"topic write {TOPIC_ROOT}/+/{ACK}",
            f"topic write {TOPIC_ROOT}/+/{ERRORS}",
            "",
            f"pattern write {TOPIC_ROOT}/%u/{TELEMETRY}",
            f"pattern read {TOPIC_ROOT}/%u/{ACK}",
            f"pattern read {TOPIC_ROOT}/%u/{ERRORS}",
            "",
        ]
    )


def _usable(robot_id: str, service_user: str) -> bool:
    return robot_id != service_user and fits_mqtt(robot_id)


def write_if_changed(path: Path, text: str) -> bool:
    """Replace the file atomically (the broker never reads half of it) if its text differs; whether it did."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)
    return True


def signal_broker(directory: Path) -> bool:
    """Ask the broker whose pid file is in ``directory`` to reload its files; whether one was there to ask."""
    try:
        pid = int((directory / PID_FILE).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


async def write_accounts(pool: Pool, settings: MqttSettings) -> bool:
    """Write the broker's files from the database; whether they changed (and the broker was signalled)."""
    directory = Path(settings.mqtt_accounts_dir)
    user, secret = settings.mqtt_username, read_secret(settings.mqtt_secret_file)
    accounts = await credentials.fetch_broker_accounts(pool)
    changed = write_if_changed(directory / ACL_FILE, render_acl(user))
    changed |= write_if_changed(directory / PASSWORD_FILE, render_passwords(user, secret, accounts))
    if changed:
        signal_broker(directory)
    return changed


class BrokerAccounts:
    """Keeps the broker's files in step with the credentials, polling every ``mqtt_accounts_poll_ms``. Every
    process may run one: each writes only when the text differs, so they agree rather than race."""

    def __init__(self, pool: Pool, settings: MqttSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._poller = Periodic("broker-accounts", settings.mqtt_accounts_poll_ms / 1000, self._refresh)

    async def start(self) -> None:
        await write_accounts(self._pool, self._settings)
        self._poller.start()

    async def close(self) -> None:
        await self._poller.close()

    async def _refresh(self) -> None:
        # A database away leaves the broker the accounts it has; Periodic says so once.
        if await write_accounts(self._pool, self._settings):
            log.info("broker accounts rewritten; the broker was asked to reload them")
