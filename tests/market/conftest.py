"""Fixtures for market tests: the fake CoinGecko on a real uvicorn, a shared frozen clock, and a provider factory
whose waits advance that clock (so Retry-After and back-off are asserted exactly, without real waiting)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aaiti.core.clock import FrozenClock
from aaiti.market.coingecko import CoinGeckoConfig, CoinGeckoProvider
from tests.fakes.clock import ClockSleeper
from tests.fakes.coingecko import FAKE_NOW, FakeCoinGecko, running_fake

#: Generous budget and short timeouts: individual tests tighten what they check.
FAST: dict[str, Any] = {
    "budget_calls": 1000,
    "search_calls_per_period": 1000,
    "connect_timeout_s": 1.0,
    "read_timeout_s": 1.0,
    "request_deadline_s": 1.0,
    "operation_deadline_s": 60.0,
    "backoff_base_s": 0.05,
    "backoff_cap_s": 0.4,
    "trust_env": False,
}

ProviderFactory = Callable[..., CoinGeckoProvider]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(FAKE_NOW)


@pytest.fixture
def sleeper(clock: FrozenClock) -> ClockSleeper:
    return ClockSleeper(clock)


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakeCoinGecko]:
    async with running_fake(clock) as server:
        yield server


@pytest.fixture
async def make_provider(
    fake: FakeCoinGecko, clock: FrozenClock, sleeper: ClockSleeper
) -> AsyncIterator[ProviderFactory]:
    made: list[CoinGeckoProvider] = []

    def factory(**overrides: Any) -> CoinGeckoProvider:
        config = CoinGeckoConfig(**{"base_url": fake.base_url, **FAST, **overrides})
        provider = CoinGeckoProvider(config, clock=clock, sleep=sleeper, rng=random.Random(7))
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        await provider.aclose()
