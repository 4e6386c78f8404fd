"""CoinGecko prices over real HTTP against the fake: every fault of RELIABILITY §7.2 "External API".

Each test shows: no crash, no invented value (what is served equals what the fake served before, or nothing),
``stale`` when it should be, and upstream calls bounded.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from aaiti.core.clock import FrozenClock
from aaiti.core.errors import Invalid, TooManyRequests, Unavailable
from aaiti.market.coingecko import CoinGeckoConfig, CoinGeckoProvider
from aaiti.market.provider import MarketDataProvider, PriceQuote
from tests.fakes.clock import ClockSleeper
from tests.fakes.coingecko import FAKE_NOW, FakeCoinGecko, serve_asgi
from tests.market.conftest import FAST, ProviderFactory

SP = "/simple/price"
BTC_PRICE = 31723.09
BTC_AS_OF = datetime(2021, 7, 17, 21, 0, 43, tzinfo=UTC)  # the fake stamps last_updated_at with its clock


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_total(endpoint: str, outcome: str) -> float:
    return metric("aaiti_upstream_requests_total", upstream="coingecko", endpoint=endpoint, outcome=outcome)


async def prime(provider: CoinGeckoProvider, clock: FrozenClock) -> None:
    """One good fetch, then let the cache expire so the next call goes upstream."""
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert (quote.price, quote.stale) == (BTC_PRICE, False)
    clock.advance(provider.config.price_ttl_s + 1)


def assert_stale_last_good(quotes: dict[str, PriceQuote]) -> None:
    quote = quotes["BTC"]
    assert quote.price == BTC_PRICE  # the last good value, never a made-up one
    assert quote.as_of == BTC_AS_OF  # with its original time
    assert quote.stale is True


# ----------------------------------------------------------------------------------------------- happy path


async def test_prices_are_batched_validated_and_cached(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider()
    assert isinstance(provider, MarketDataProvider)
    quotes = await provider.prices(["BTC", "eth", "SOL-USD", "ADA", "XRP", "LTC"])
    assert set(quotes) == {"BTC", "ETH", "SOL", "ADA", "XRP", "LTC"}
    assert quotes["ETH"].price == 1898.28
    assert quotes["BTC"].change_24h_pct == pytest.approx(-0.30449422029805717)
    assert all(q.source == "coingecko" and not q.stale and q.as_of == BTC_AS_OF for q in quotes.values())
    assert fake.count(SP) == 1  # six symbols, one batched call
    (req,) = fake.requests
    assert sorted(req.query["ids"].split(",")) == ["bitcoin", "cardano", "ethereum", "litecoin", "ripple", "solana"]
    assert req.query["vs_currencies"] == "usd"
    assert not {"x-cg-demo-api-key", "x-cg-pro-api-key"} & set(req.headers)

    await provider.prices(["BTC"])
    assert fake.count(SP) == 1  # within TTL: cache
    fake.set_price("bitcoin", 32000.0)
    clock.advance(31)
    assert (await provider.prices(["BTC"]))["BTC"].price == 32000.0
    assert fake.count(SP) == 2


async def test_ids_are_split_into_batches(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider(max_ids_per_request=2)
    quotes = await provider.prices(["BTC", "ETH", "SOL", "ADA", "XRP"])
    assert len(quotes) == 5
    assert fake.count(SP) == 3


async def test_fifty_concurrent_misses_make_one_upstream_call(
    fake: FakeCoinGecko, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    fake.inject("delay", endpoint=SP, seconds=0.3)
    results = await asyncio.gather(*(provider.prices(["BTC", "ETH"]) for _ in range(50)))
    assert fake.count(SP) == 1
    assert {r["BTC"].price for r in results} == {BTC_PRICE}


async def test_quote_goes_stale_with_age_even_without_errors(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(price_ttl_s=600, stale_after_s=120)
    await provider.prices(["BTC"])
    clock.advance(121)
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert quote.stale
    assert quote.as_of == BTC_AS_OF
    assert fake.count(SP) == 1
    status = provider.status()
    assert status.stale
    assert status.data_age_s == pytest.approx(121.217)


async def test_unknown_and_malformed_symbols(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    fake.coins.append({"id": "pepe", "symbol": "pepe", "name": "Pepe", "market_cap_rank": 30})
    fake.coins.append({"id": "pepe-scam", "symbol": "pepe", "name": "Pepe Scam"})
    fake.set_price("pepe", 0.0000123)
    provider = make_provider()
    assert (await provider.prices(["PEPE"]))["PEPE"].price == 0.0000123
    assert fake.requests[0].query["query"] == "PEPE"
    with pytest.raises(Invalid, match="unknown symbol"):
        await provider.prices(["NOPE"])
    with pytest.raises(Invalid, match="unknown symbol"):
        await provider.prices(["NOPE"])
    assert fake.count("/search") == 2  # PEPE once, NOPE once (negative answer cached)
    with pytest.raises(Invalid):
        await provider.prices(["BTC-EUR"])
    with pytest.raises(Invalid):
        await provider.prices(["x" * 40])


async def test_user_driven_searches_cannot_drain_the_budget(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(search_calls_per_period=2, budget_period_s=60)
    assert [s.coin_id for s in await provider.search("bitcoin")] == ["bitcoin"]
    await provider.search("ether")
    with pytest.raises(TooManyRequests) as exc:
        await provider.search("sol")
    assert 0 < exc.value.retry_after <= 60
    with pytest.raises(TooManyRequests):
        await provider.prices(["RANDOMTKR"])  # unknown tickers go through the same cap
    assert [s.coin_id for s in await provider.search("Bitcoin")] == ["bitcoin"]  # cached answers still flow
    assert (await provider.prices(["BTC"]))["BTC"].price == BTC_PRICE  # and prices are untouched
    assert fake.count("/search") == 2
    clock.advance(61)
    assert [s.coin_id for s in await provider.search("sol")] == ["solana"]


# ------------------------------------------------------------------------------------------------ 429


async def test_429_retry_after_seconds_pauses_the_whole_client(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock, sleeper: ClockSleeper
) -> None:
    provider = make_provider()
    fake.inject("429", endpoint=SP, retry_after="30")
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert (quote.price, quote.stale) == (BTC_PRICE, False)
    assert sleeper.calls == [30.0]
    first, second = fake.requests
    assert second.clock_ms - first.clock_ms == 30_000  # not one request during the pause


async def test_retry_after_beyond_the_deadline_fails_fast_and_blocks_every_call(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(retry_after_max_s=120, operation_deadline_s=20, failure_backoff_s=0)
    await prime(provider, clock)
    fake.inject("429", endpoint=SP, retry_after="3600")
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count(SP) == 2
    status = provider.status()
    assert status.paused_until is not None
    assert (status.paused_until - clock.now()).total_seconds() == pytest.approx(120)  # clamped
    skipped = requests_total("/search", "paused")
    with pytest.raises(Unavailable):
        await provider.search("ethereum")  # other endpoints wait too: paused, no request
    assert requests_total("/search", "paused") == skipped + 1
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count() == 2
    clock.advance(121)
    assert (await provider.prices(["BTC"]))["BTC"].stale is False
    assert fake.count(SP) == 3


async def test_429_with_http_date(fake: FakeCoinGecko, make_provider: ProviderFactory, sleeper: ClockSleeper) -> None:
    provider = make_provider()
    fake.inject("429_date", endpoint=SP, seconds=20)
    assert (await provider.prices(["BTC"]))["BTC"].stale is False
    (pause,) = sleeper.calls
    assert 19.0 < pause <= 20.0  # HTTP-date has whole seconds; the fake clock is at .217


@pytest.mark.parametrize("kind", ["429", "429_html"])
async def test_429_without_header_backs_off_with_jitter(
    fake: FakeCoinGecko, make_provider: ProviderFactory, sleeper: ClockSleeper, kind: str
) -> None:
    provider = make_provider(backoff_base_s=0.5, backoff_cap_s=4)
    pauses = metric("aaiti_upstream_pauses_total", upstream="coingecko")
    fake.inject(kind, endpoint=SP, times=2)
    assert (await provider.prices(["BTC"]))["BTC"].price == BTC_PRICE
    assert fake.count(SP) == 3
    assert len(sleeper.calls) == 2
    assert 0 <= sleeper.calls[0] <= 0.5
    assert 0 <= sleeper.calls[1] <= 1.0
    assert metric("aaiti_upstream_pauses_total", upstream="coingecko") == pauses + 2


# ------------------------------------------------------------------------------------------------ 5xx / 4xx


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_5xx_is_retried(fake: FakeCoinGecko, make_provider: ProviderFactory, code: int) -> None:
    provider = make_provider()
    retries = metric("aaiti_upstream_retries_total", upstream="coingecko", endpoint=SP, reason="http_5xx")
    fake.inject("status", endpoint=SP, code=code, times=2)
    assert (await provider.prices(["BTC"]))["BTC"].price == BTC_PRICE
    assert fake.count(SP) == 3
    assert metric("aaiti_upstream_retries_total", upstream="coingecko", endpoint=SP, reason="http_5xx") == retries + 2


async def test_503_with_retry_after_is_honoured(
    fake: FakeCoinGecko, make_provider: ProviderFactory, sleeper: ClockSleeper
) -> None:
    provider = make_provider()
    fake.inject("status", endpoint=SP, code=503, retry_after="5")
    assert (await provider.prices(["BTC"]))["BTC"].stale is False
    assert sleeper.calls == [5.0]


async def test_5xx_until_attempts_run_out_serves_stale(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(max_attempts=3)
    await prime(provider, clock)
    fake.inject("status", endpoint=SP, code=500, times=None)
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count(SP) == 1 + 3
    assert provider.status().last_error == "HTTP 500"


@pytest.mark.parametrize("code", [403, 400, 401])
async def test_4xx_is_not_retried(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock, code: int
) -> None:
    provider = make_provider()
    with_cache = make_provider()
    await prime(with_cache, clock)
    fake.inject("status", endpoint=SP, code=code, times=None)
    with pytest.raises(Unavailable, match=f"HTTP {code}"):
        await provider.prices(["BTC"])
    assert_stale_last_good(await with_cache.prices(["BTC"]))
    assert fake.count(SP) == 1 + 2  # one try each, no retry
    if code == 403:
        assert provider.status().last_error == "HTTP 403: error code: 1020"


# ------------------------------------------------------------------------------------------ slow / broken


@pytest.mark.parametrize("kind", ["slow_drip", "delay"])
async def test_slow_upstream_times_out(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock, kind: str
) -> None:
    provider = make_provider(read_timeout_s=0.3, request_deadline_s=0.5, max_attempts=2)
    await prime(provider, clock)
    fake.inject(kind, endpoint=SP, times=None, interval=1.0, seconds=0.8)
    before = requests_total(SP, "timeout")
    started = time.perf_counter()
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert time.perf_counter() - started < 2.0
    assert fake.count(SP) == 1 + 2
    assert requests_total(SP, "timeout") == before + 2


async def test_connection_reset_mid_body_is_retried(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(max_attempts=3)
    fake.inject("reset", endpoint=SP)
    assert (await provider.prices(["BTC"]))["BTC"].price == BTC_PRICE
    assert fake.count(SP) == 2
    clock.advance(31)
    fake.inject("reset", endpoint=SP, times=None)
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count(SP) == 2 + 3


async def test_connection_refused(clock: FrozenClock, sleeper: ClockSleeper) -> None:
    async with serve_asgi(FakeCoinGecko(clock).app) as root:
        pass  # the port is now closed
    config = CoinGeckoConfig(**{**FAST, "base_url": f"{root}/api/v3", "max_attempts": 2})
    provider = CoinGeckoProvider(config, clock=clock, sleep=sleeper)
    try:
        with pytest.raises(Unavailable, match="cannot connect"):
            await provider.prices(["BTC"])
        assert provider.status().breaker_state == "closed"
    finally:
        await provider.aclose()


# ------------------------------------------------------------------------------------------- bad payloads


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("html_200", {}, "html"),
        ("html_200", {"content_type": "application/json"}, "html"),
        ("truncated", {}, "truncated_json"),
    ],
)
async def test_unusable_200_bodies_are_rejected_not_retried(
    fake: FakeCoinGecko,
    make_provider: ProviderFactory,
    clock: FrozenClock,
    kind: str,
    params: dict[str, Any],
    reason: str,
) -> None:
    provider = make_provider()
    await prime(provider, clock)
    before = metric("aaiti_market_rejected_payloads_total", upstream="coingecko", endpoint=SP, reason=reason)
    fake.inject(kind, endpoint=SP, **params)
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count(SP) == 2
    assert metric("aaiti_market_rejected_payloads_total", upstream="coingecko", endpoint=SP, reason=reason) == (
        before + 1
    )


@pytest.mark.parametrize("mutation", ["missing", "string", "null", "zero", "negative", "huge"])
async def test_wrong_schema_never_replaces_the_last_good_price(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock, mutation: str
) -> None:
    provider = make_provider()
    await prime(provider, clock)
    fake.inject("schema", endpoint=SP, mutation=mutation)
    assert_stale_last_good(await provider.prices(["BTC"]))
    clock.advance(6)  # failure back-off over; the fake answers well again
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert (quote.price, quote.stale) == (BTC_PRICE, False)


async def test_wrong_schema_with_nothing_cached_is_unavailable(
    fake: FakeCoinGecko, make_provider: ProviderFactory
) -> None:
    provider = make_provider()
    fake.inject("schema", endpoint=SP, mutation="negative")
    with pytest.raises(Unavailable):
        await provider.prices(["BTC"])


async def test_absurd_jump_is_held_until_confirmed(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider()
    await prime(provider, clock)
    fake.inject("jump", endpoint=SP, factor=1000)
    assert_stale_last_good(await provider.prices(["BTC"]))  # a one-off 1000x tick never shows
    clock.advance(31)
    assert (await provider.prices(["BTC"]))["BTC"].price == BTC_PRICE
    fake.set_price("bitcoin", BTC_PRICE * 0.3)  # a real -70 % crash that persists
    clock.advance(31)
    held = (await provider.prices(["BTC"]))["BTC"]
    assert (held.price, held.stale) == (BTC_PRICE, True)
    clock.advance(31)
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert quote.price == pytest.approx(BTC_PRICE * 0.3)
    assert not quote.stale


async def test_empty_body_keeps_the_last_good_price(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider()
    await prime(provider, clock)
    fake.inject("empty", endpoint=SP)
    assert_stale_last_good(await provider.prices(["BTC"]))


@pytest.mark.parametrize("declare", [False, True])
async def test_oversized_body_is_cut_off(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock, declare: bool
) -> None:
    provider = make_provider(max_response_bytes=200_000, request_deadline_s=5, read_timeout_s=5)
    await prime(provider, clock)
    fake.inject("oversized", endpoint=SP, size=50_000_000, declare=declare)
    before = requests_total(SP, "too_large")
    started = time.perf_counter()
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert time.perf_counter() - started < 3.0
    assert fake.bytes_streamed < 20_000_000  # the client hung up; 50 MB were never pulled
    assert requests_total(SP, "too_large") == before + 1
    assert fake.count(SP) == 2


async def test_redirect_is_not_followed(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider()
    await prime(provider, clock)
    fake.inject("redirect", endpoint=SP)
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count("/redirected") == 0
    assert fake.count(SP) == 2


# ---------------------------------------------------------------------------------- outage and breaker


async def test_long_outage_opens_the_breaker_then_recovers_without_a_storm(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(breaker_failure_threshold=3, breaker_cooldown_s=60, max_attempts=2)
    await prime(provider, clock)
    fake.outage = True
    for _ in range(3):
        assert_stale_last_good(await provider.prices(["BTC"]))
        clock.advance(6)
    assert provider.status().breaker_state == "open"
    assert metric("aaiti_upstream_breaker_state", upstream="coingecko") == 2
    during = fake.count()
    assert during == 1 + 3 * 2
    for _ in range(8):  # 48 s of polling while open: not one request
        assert_stale_last_good(await provider.prices(["BTC"]))
        clock.advance(6)
    assert fake.count() == during
    clock.advance(20)  # cool-down over: one probe, which still fails and re-opens the circuit
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert fake.count() == during + 1
    assert provider.status().breaker_state == "open"
    fake.outage = False  # the outage ends
    clock.advance(61)
    fake.set_price("bitcoin", 31800.0)
    quote = (await provider.prices(["BTC"]))["BTC"]
    assert (quote.price, quote.stale) == (31800.0, False)
    assert provider.status().breaker_state == "closed"
    assert metric("aaiti_upstream_breaker_state", upstream="coingecko") == 0
    assert fake.count() == during + 2  # recovery costs one call, no burst of queued retries
    status = provider.status()
    assert status.last_error is None
    assert status.last_success == clock.now()


async def test_half_open_lets_exactly_one_probe_through(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(breaker_failure_threshold=1, breaker_cooldown_s=10, max_attempts=1)
    await prime(provider, clock)
    fake.outage = True
    assert_stale_last_good(await provider.prices(["BTC"]))
    assert provider.status().breaker_state == "open"
    fake.outage = False
    clock.advance(11)
    fake.inject("delay", seconds=0.3)
    results = await asyncio.gather(provider.prices(["BTC"]), provider.search("bitcoin"), return_exceptions=True)
    assert fake.count() == 1 + 1 + 1  # prime, failure, and the single probe
    assert isinstance(results[1], Unavailable)  # the concurrent call was short-circuited
    assert provider.status().breaker_state == "closed"


async def test_retry_budget_caps_retries(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(
        max_attempts=4, retry_budget_ratio=0.0, retry_budget_min=2, breaker_failure_threshold=100, failure_backoff_s=0
    )
    fake.outage = True
    for _ in range(5):
        with pytest.raises(Unavailable):
            await provider.prices(["BTC"])
    assert fake.count(SP) == 5 + 2  # five first tries and only two retries in the window


# ----------------------------------------------------------------------------------------- budget, keys


async def test_upstream_calls_stay_within_budget_in_every_window(fake: FakeCoinGecko, clock: FrozenClock) -> None:
    config = CoinGeckoConfig(**{**FAST, "base_url": fake.base_url, "budget_calls": 5, "budget_period_s": 0.5})
    assert config.search_calls_per_period >= 14
    provider = CoinGeckoProvider(config, clock=clock)
    try:
        await asyncio.gather(*(provider.search(f"coin{i}") for i in range(14)))
    finally:
        await provider.aclose()
    times = sorted(r.wall for r in fake.requests)
    assert len(times) == 14
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u - t < 0.5 - 0.02)
        assert in_window <= 5, (i, in_window)


async def test_demo_key_header_and_pro_key_misconfiguration(fake: FakeCoinGecko, clock: FrozenClock) -> None:
    demo = CoinGeckoProvider(
        CoinGeckoConfig(**{**FAST, "base_url": fake.base_url, "key_kind": "demo", "api_key": "CG-demo-123"}),
        clock=clock,
    )
    pro = CoinGeckoProvider(
        CoinGeckoConfig(**{**FAST, "base_url": fake.base_url, "key_kind": "pro", "api_key": "CG-pro-secret"}),
        clock=clock,
    )
    try:
        await demo.prices(["BTC"])
        assert fake.requests[-1].headers["x-cg-demo-api-key"] == "CG-demo-123"
        with pytest.raises(Unavailable) as exc:
            await pro.prices(["BTC"])  # a pro key sent to the public host: 400 / 10010, not retried
        assert "10010" in str(exc.value.detail)
        assert "CG-pro-secret" not in str(exc.value.detail)
        assert fake.count(SP) == 2
        fake.host_kind = "pro"
        clock.advance(10)
        assert (await pro.prices(["BTC"]))["BTC"].price == BTC_PRICE
    finally:
        await demo.aclose()
        await pro.aclose()


def test_config_defaults_and_key_rules() -> None:
    default = CoinGeckoConfig()
    assert default.resolved_base_url == "https://api.coingecko.com/api/v3"
    assert default.budget_calls == 10
    assert default.history_limit_days == 365
    pro = CoinGeckoConfig(key_kind="pro", api_key="sekrit-pro-key")
    assert pro.resolved_base_url == "https://pro-api.coingecko.com/api/v3"
    assert pro.history_limit_days is None
    assert "sekrit" not in repr(pro)
    with pytest.raises(ValueError, match="needs an api_key"):
        CoinGeckoConfig(key_kind="demo")
    with pytest.raises(ValueError, match="key_kind"):
        CoinGeckoConfig(api_key="k")


async def test_status_reports_source_budget_and_metrics_use_templates(
    fake: FakeCoinGecko, make_provider: ProviderFactory
) -> None:
    provider = make_provider(budget_calls=50)
    before = requests_total("/coins/{id}/ohlc", "ok")
    await provider.prices(["BTC", "ETH"])
    await provider.candles("BTC", "4h", FAKE_NOW.replace(day=12), FAKE_NOW)
    status = provider.status()
    assert status.source == "coingecko"
    assert status.breaker_state == "closed"
    assert not status.stale
    assert (status.budget_used, status.budget_limit) == (2, 50)
    assert set(status.symbol_age_s) == {"BTC", "ETH"}
    assert status.detail["host"].startswith("127.0.0.1:")
    assert requests_total("/coins/{id}/ohlc", "ok") == before + 1
    assert metric("aaiti_market_data_age_seconds", symbol="BTC") == pytest.approx(0.217)
    assert await provider.ping() is True
