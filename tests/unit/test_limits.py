"""Rate and concurrency limits: exact numbers, 429 with Retry-After past them, and recovery."""

from __future__ import annotations

import pytest

from app.model.errors import RateLimited
from app.model.principal import Principal, Scope
from app.platform.limits import ConcurrencyLimiter, RateLimiter
from app.platform.settings import LimitSettings
from app.web.lifespan import Limits


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=5)
    for _ in range(5):
        limiter.take("robot", now=100.0)
    with pytest.raises(RateLimited) as info:
        limiter.take("robot", now=100.0)
    assert info.value.headers["Retry-After"] == "1"
    limiter.take("other", now=100.0)  # buckets are per client
    limiter.take("robot", now=100.15)  # 0.15 s at 10/s refills one (and a half)
    with pytest.raises(RateLimited):
        limiter.take("robot", now=100.15)


def test_concurrency_is_capped_per_client_and_in_all() -> None:
    limiter = ConcurrencyLimiter(per_client=2, total=3, what="exports")
    limiter.acquire("a")
    limiter.acquire("a")
    with pytest.raises(RateLimited, match="per credential"):
        limiter.acquire("a")
    limiter.acquire("b")
    with pytest.raises(RateLimited, match="in all"):
        limiter.acquire("c")
    limiter.release("a")
    with limiter.hold("c"):
        assert limiter.in_flight == 3
    assert limiter.in_flight == 2


def test_fair_slots_keep_the_last_one_for_a_credential_holding_none() -> None:
    """N11: with 4 heavy-read slots and 2 per credential, two credentials took all 4 and a third got 429."""
    limiter = ConcurrencyLimiter(per_client=2, total=4, what="heavy reads", fair=True)
    limiter.acquire("a")
    limiter.acquire("a")
    limiter.acquire("b")
    with pytest.raises(RateLimited, match="kept for a credential that holds none"):
        limiter.acquire("b")  # it would take the last slot
    limiter.acquire("c")  # the newcomer gets it
    with pytest.raises(RateLimited, match="in all"):
        limiter.acquire("d")
    limiter.release("a")
    limiter.acquire("d")
    assert limiter.in_flight == 4


def test_robots_and_gateway_keys_have_their_own_ingest_allowance() -> None:
    limits = Limits.from_settings(LimitSettings())  # the defaults: 8 for a robot's token, 64 for a key
    robot = Principal(1, "r1", frozenset({Scope.WRITE_OWN}), robot_id="r1")
    gateway = Principal(2, "site gateway", frozenset({Scope.INGEST}))
    for _ in range(64):
        limits.ingest_limiter_for(gateway).acquire(gateway.credential_id)
    with pytest.raises(RateLimited, match="at most 64 ingest requests"):
        limits.ingest_limiter_for(gateway).acquire(gateway.credential_id)
    for _ in range(8):
        limits.ingest_limiter_for(robot).acquire(robot.credential_id)
    with pytest.raises(RateLimited, match="at most 8 ingest requests"):
        limits.ingest_limiter_for(robot).acquire(robot.credential_id)
