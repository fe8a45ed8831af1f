"""Webhooks against a real HTTP receiver: signed, retried with backoff until a flaky receiver accepts, delivered
after an API restart, and logged."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.alerts import store as alerts
from app.alerts.webhooks import sign, verify_signature
from app.model.errors import ErrorKind
from app.platform.settings import Settings, replace_settings
from simulator.webhook_receiver import Receiver
from tests.support.alerts import create_rule, eventually, open_alerts, post
from tests.support.problems import assert_problem
from tests.support.servers import serve_in_process


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    """Answers 503 twice, then accepts; checks signatures once the test gives it the secret."""
    receiver = Receiver(fail_first=2, quiet=True)
    receiver.start()
    yield receiver
    receiver.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def register(api: httpx.AsyncClient, url: str) -> dict[str, str]:
    response = await api.post("/webhooks", json={"url": url, "description": "test"})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


async def test_a_flaky_receiver_gets_a_signed_delivery_after_retries(
    alert_settings: Settings, conn: asyncpg.Connection, flaky: Receiver
) -> None:
    async with serve_in_process(alert_settings) as api:
        hook = await register(api, f"http://127.0.0.1:{flaky.port}/hook")
        flaky.secret = hook["secret"]
        assert "secret" not in (await api.get("/webhooks")).json()[0]  # shown once, at creation only
        await create_rule(api, {"kind": "status"})
        await post(api, "w1", status="error")
        await eventually(lambda: open_alerts(api, "w1"))
        # 503, 503, then 200: attempts 1 s and 2 s apart (FLEET_WEBHOOK_RETRY_BASE_S=1, doubling)
        assert await asyncio.to_thread(flaky.wait_for, 3, 10.0)

        async def delivered() -> list[tuple[str, int, int]]:
            log = (await api.get(f"/webhooks/{hook['webhook_id']}/deliveries")).json()["deliveries"]
            return [(d["state"], d["attempts"], d["last_status"]) for d in log if d["state"] == "delivered"]

        assert await eventually(delivered) == [("delivered", 3, 200)]
    last = flaky.deliveries[-1]
    assert [d.answered for d in flaky.deliveries] == [503, 503, 200]
    assert all(d.signature_valid for d in flaky.deliveries)
    # The Standard Webhooks reference library accepts it too (it raises on a bad signature).
    assert Webhook(hook["secret"]).verify(last.body, last.headers) == json.loads(last.body)
    assert len({d.headers["webhook-id"] for d in flaky.deliveries}) == 1  # one delivery, retried: one id
    assert len({d.body for d in flaky.deliveries}) == 1
    event = json.loads(last.body)
    assert (event["type"], event["alert"]["robot_id"], event["alert"]["state"]) == ("alert.opened", "w1", "active")
    # A tampered body or an old timestamp fails verification.
    assert not verify_signature(hook["secret"], last.headers, last.body.replace("w1", "w2"))
    stale = {**last.headers, "webhook-timestamp": str(int(last.headers["webhook-timestamp"]) - 3600)}
    stale["webhook-signature"] = sign(hook["secret"], stale["webhook-id"], int(stale["webhook-timestamp"]), last.body)
    assert not verify_signature(hook["secret"], stale, last.body)


async def test_a_delivery_survives_an_api_restart(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    port = free_port()  # nothing listens there yet: the first attempts fail
    async with serve_in_process(alert_settings) as api:
        hook = await register(api, f"http://127.0.0.1:{port}/")
        await create_rule(api, {"kind": "battery", "below": 20})
        await post(api, "w2", battery_level=5)
        await eventually(lambda: open_alerts(api, "w2"))
        await eventually(
            lambda: conn.fetchval("SELECT last_error IS NOT NULL FROM webhook_deliveries WHERE state = 'pending'")
        )
    receiver = Receiver(secret=hook["secret"], port=port, quiet=True)
    receiver.start()
    try:
        async with serve_in_process(alert_settings):  # a new process: the outbox is in the database
            assert await asyncio.to_thread(receiver.wait_for, 1, 10.0)
            await eventually(lambda: conn.fetchval("SELECT state = 'delivered' FROM webhook_deliveries"))
    finally:
        receiver.stop()
    assert receiver.deliveries[0].signature_valid
    assert json.loads(receiver.deliveries[0].body)["alert"]["robot_id"] == "w2"


async def test_webhook_routes_refuse_bad_input(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    async with serve_in_process(alert_settings) as api:
        assert_problem(await api.post("/webhooks", json={"url": "ftp://x.example/"}), ErrorKind.BAD_PARAMETER)
        assert_problem(await api.delete("/webhooks/12345"), ErrorKind.UNKNOWN_WEBHOOK)
        for unusable in ("http://a\u001ab.example/", "http://[::1/"):  # a control character; an unclosed IPv6 host
            assert_problem(await api.post("/webhooks", json={"url": unusable}), ErrorKind.BAD_PARAMETER)
        hook = await register(api, "http://127.0.0.1:9/")
        assert (await api.get(f"/webhooks/{hook['webhook_id']}/deliveries")).json()["deliveries"] == []
        assert (await api.delete(f"/webhooks/{hook['webhook_id']}")).status_code == 204
        assert (await api.get("/webhooks")).json() == []
        # A deleted webhook has no delivery log either: 404, not an empty page.
        assert_problem(await api.get(f"/webhooks/{hook['webhook_id']}/deliveries"), ErrorKind.UNKNOWN_WEBHOOK)


async def test_delivery_attempts_are_capped_per_second(
    alert_settings: Settings, conn: asyncpg.Connection, database_url: str
) -> None:
    """FLEET_WEBHOOK_ATTEMPTS_PER_S: a storm towards a receiver that is down is attempted at a bounded rate."""
    capped = replace_settings(alert_settings, webhook_attempts_per_s=2, webhook_poll_ms=500)  # 1 per tick
    async with serve_in_process(capped) as api:
        await register(api, f"http://127.0.0.1:{free_port()}/")
        rule = await create_rule(api, {"kind": "status"})
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            storm = [(rule["rule_id"], "r", "status", f"storm-{i}", "why") for i in range(10)]
            opened, _ = await alerts.apply_transitions(pool, storm, [])
            assert len(opened) == 10
        finally:
            await pool.close()
        await asyncio.sleep(2.2)  # ticks at about 0, 0.5, 1.0, 1.5 and 2.0 s
        attempts = await conn.fetchval("SELECT sum(attempts) FROM webhook_deliveries")
    assert 2 <= attempts <= 5, attempts


async def test_an_unusable_stored_url_does_not_hold_up_other_deliveries(
    alert_settings: Settings, conn: asyncpg.Connection
) -> None:
    # Registered before URLs were checked: its attempts fail, and the other webhook's delivery still arrives.
    await conn.execute(
        "INSERT INTO webhooks (url, description, secret) VALUES ($1, 'old', $2)", "http://a\u001ab.example/", "whsec_"
    )
    receiver = Receiver(quiet=True)
    url = receiver.start()
    try:
        async with serve_in_process(alert_settings) as api:
            await register(api, url)
            await create_rule(api, {"kind": "battery", "below": 20})
            await post(api, "w3", battery_level=5)
            assert await asyncio.to_thread(receiver.wait_for, 1, 10.0)
            failed = await eventually(
                lambda: conn.fetchval("SELECT last_error FROM webhook_deliveries WHERE last_error IS NOT NULL")
            )
    finally:
        receiver.stop()
    assert failed.startswith("url is not a usable URL")


PRIVATE_TARGETS = [
    "http://127.0.0.1:8000/",
    "http://localhost:8000/",
    "http://2130706433/",  # 127.0.0.1 spelt as one decimal number
    "http://0x7f.1/",
    "http://127.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space (carrier NAT)
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/",
    "http://printer.local/",
    "http://user:pw@example.com/",  # would be sent as Basic auth
]


async def test_webhooks_reach_public_addresses_only(settings: Settings, conn: asyncpg.Connection) -> None:
    """N7: loopback, private, link-local, shared and metadata targets, in any spelling, are refused at
    registration; one stored pointing there anyway (DNS changed since) is refused at delivery, and the
    delivery log names no network detail."""
    receiver = Receiver(quiet=True)
    url = receiver.start()
    fast = replace_settings(settings, alert_tick_ms=100, alert_interval_ms=20, webhook_poll_ms=100)
    try:
        async with serve_in_process(fast) as api:
            for target in PRIVATE_TARGETS:
                refused = await api.post("/webhooks", json={"url": target})
                assert_problem(refused, ErrorKind.BAD_PARAMETER)
            assert await conn.fetchval("SELECT count(*) FROM webhooks") == 0
            await conn.execute("INSERT INTO webhooks (url, description, secret) VALUES ($1, 'rebound', 'whsec_')", url)
            await create_rule(api, {"kind": "battery", "below": 20})
            await post(api, "w4", battery_level=5)
            failed = await eventually(
                lambda: conn.fetchval("SELECT last_error FROM webhook_deliveries WHERE last_error IS NOT NULL")
            )
    finally:
        receiver.stop()
    assert receiver.deliveries == []
    assert failed == "the target is not a public address (FLEET_WEBHOOK_ALLOW_PRIVATE allows it)"


async def test_the_delivery_log_names_no_network_detail(alert_settings: Settings, conn: asyncpg.Connection) -> None:
    """A closed port reads as "could not be reached", not as ConnectError with the address."""
    async with serve_in_process(alert_settings) as api:
        await register(api, f"http://127.0.0.1:{free_port()}/")
        await create_rule(api, {"kind": "battery", "below": 20})
        await post(api, "w5", battery_level=5)
        failed = await eventually(
            lambda: conn.fetchval("SELECT last_error FROM webhook_deliveries WHERE last_error IS NOT NULL")
        )
    assert failed == "the receiver could not be reached"
