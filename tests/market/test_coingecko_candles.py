"""Candles from CoinGecko over real HTTP: automatic granularity respected and recorded, never faked finer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from aaiti.core.clock import FrozenClock
from aaiti.core.errors import Invalid, Unavailable
from aaiti.market.coingecko import CandlePlan, plan_candles
from aaiti.market.provider import SymbolInfo
from aaiti.market.validation import to_ms
from tests.fakes.coingecko import FAKE_NOW, FAKE_NOW_MS, FakeCoinGecko, load_fixture
from tests.market.conftest import ProviderFactory

M = 60_000
H = 3_600_000
DAY = 86_400_000
OHLC = "/coins/{id}/ohlc"
CHART = "/coins/{id}/market_chart"


def ago(days: float) -> datetime:
    return FAKE_NOW - timedelta(days=days)


@pytest.mark.parametrize(
    ("timeframe", "days", "expected"),
    [
        ("5m", 1, CandlePlan("market_chart", 1, 5 * M)),
        ("15m", 1, CandlePlan("market_chart", 1, 5 * M)),
        ("30m", 1, CandlePlan("ohlc", 1, 30 * M)),
        ("1h", 1, CandlePlan("ohlc", 1, 30 * M)),
        ("1h", 5, CandlePlan("market_chart", 7, H)),
        ("4h", 5, CandlePlan("ohlc", 7, 4 * H)),
        ("1d", 20, CandlePlan("ohlc", 30, 4 * H)),
        ("4h", 60, CandlePlan("market_chart", 90, H)),
        ("1d", 60, CandlePlan("market_chart", 90, H)),
        ("1d", 200, CandlePlan("market_chart", 365, DAY)),
    ],
)
def test_plan_prefers_real_ohlc_then_points(timeframe: str, days: float, expected: CandlePlan) -> None:
    assert plan_candles(timeframe, FAKE_NOW - timedelta(days=days), FAKE_NOW, 365) == expected


@pytest.mark.parametrize(
    ("timeframe", "days", "match"),
    [
        ("5m", 2, r"5m candles need a start within the last 1 day"),
        ("30m", 3, r"within the last 1 day"),
        ("1h", 100, r"finest data .* is 1d.*within the last 90 day"),
        ("4h", 200, r"is 1d"),
        ("1d", 400, r"at most 365 days"),
    ],
)
def test_plan_refuses_finer_than_available(timeframe: str, days: float, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        plan_candles(timeframe, FAKE_NOW - timedelta(days=days), FAKE_NOW, 365)


def test_plan_pro_has_no_history_limit() -> None:
    assert plan_candles("1d", FAKE_NOW - timedelta(days=800), FAKE_NOW, None) == CandlePlan("market_chart", 800, DAY)


async def test_5m_from_points_of_the_last_day(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider()
    series = await provider.candles("BTC", "5m", FAKE_NOW - timedelta(hours=6), FAKE_NOW)
    assert fake.requests[0].path.endswith("/coins/bitcoin/market_chart")
    assert fake.requests[0].query == {"vs_currency": "usd", "days": "1"}
    assert (series.granularity_ms, series.kind, series.source, series.stale) == (
        5 * M,
        "price_points",
        "coingecko",
        False,
    )
    c = series.candles
    assert len(c) == 71  # 15:05 .. 20:55: the 15:00 bucket opened before the range, the 21:00 one is still open
    assert (c.ts % (5 * M) == 0).all()
    assert c.ts[0] >= to_ms(FAKE_NOW - timedelta(hours=6))
    assert c.ts[-1] + 5 * M <= FAKE_NOW_MS  # the bucket still open at "now" is left out
    assert np.isnan(c.volume).all()  # total_volumes is a rolling 24 h figure, not bar volume
    points = load_fixture("coins_bitcoin_market_chart_days_1.json")["prices"]
    by_bucket = {p[0] // (5 * M) * (5 * M): p[1] for p in points}
    assert c.close.tolist() == [by_bucket[t] for t in c.ts.tolist()]


async def test_30m_is_real_ohlc_with_open_times(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider()
    series = await provider.candles("BTC", "30m", ago(1), FAKE_NOW)
    rows = load_fixture("coins_bitcoin_ohlc_days_1.json")
    assert (series.granularity_ms, series.kind) == (30 * M, "ohlc")
    c = series.candles
    assert c.ts.tolist() == [r[0] - 30 * M for r in rows][1:]  # the first candle opened before the range
    assert c.close.tolist() == [float(r[4]) for r in rows][1:]
    assert c.high.tolist() == [float(r[2]) for r in rows][1:]


async def test_1d_from_4h_ohlc_only_complete_days(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider()
    series = await provider.candles("BTC", "1d", ago(7), FAKE_NOW)
    assert fake.requests[0].query["days"] == "7"
    assert (series.granularity_ms, series.timeframe) == (4 * H, "1d")  # what was received, what was made
    rows = np.array(load_fixture("coins_bitcoin_ohlc_days_7.json"), dtype=np.float64)
    opens = rows[:, 0].astype(np.int64) - 4 * H
    c = series.candles
    assert (c.ts % DAY == 0).all()
    assert len(c) == 6
    for i, day in enumerate(c.ts.tolist()):
        part = rows[(opens >= day) & (opens < day + DAY)]
        assert len(part) == 6
        assert (c.open[i], c.high[i], c.low[i], c.close[i]) == (
            part[0, 1],
            part[:, 2].max(),
            part[:, 3].min(),
            part[-1, 4],
        )


async def test_hourly_and_daily_points(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider()
    hourly = await provider.candles("BTC", "1h", ago(7), FAKE_NOW)
    assert (hourly.granularity_ms, hourly.kind) == (H, "price_points")
    assert fake.requests[-1].query["days"] == "7"
    assert 160 <= len(hourly.candles) <= 168
    daily = await provider.candles("BTC", "1d", ago(300), ago(100))
    assert fake.requests[-1].query["days"] == "365"
    assert daily.granularity_ms == DAY
    assert len(daily.candles) == 200
    assert daily.candles.ts[-1] < to_ms(ago(100))


async def test_candles_are_cached_and_served_stale_on_failure(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    provider = make_provider(candles_ttl_s=300)
    first = await provider.candles("BTC", "4h", ago(5), FAKE_NOW)
    await provider.candles("BTC", "4h", ago(3), FAKE_NOW)  # same plan: cache
    assert fake.count(OHLC) == 1
    clock.advance(301)
    fake.inject("schema", endpoint=OHLC, mutation="negative")
    again = await provider.candles("BTC", "4h", ago(5), FAKE_NOW)
    assert again.stale
    np.testing.assert_array_equal(again.candles.close, first.candles.close[: len(again.candles)])
    assert fake.count(OHLC) == 2


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("schema", {"mutation": "missing"}),
        ("schema", {"mutation": "string"}),
        ("schema", {"mutation": "huge"}),
        ("empty", {}),
        ("truncated", {}),
        ("html_200", {}),
        ("status", {"code": 403}),
    ],
)
async def test_bad_chart_payload_with_nothing_cached_is_unavailable(
    fake: FakeCoinGecko, make_provider: ProviderFactory, kind: str, params: dict[str, Any]
) -> None:
    provider = make_provider()
    fake.inject(kind, endpoint=CHART, **params)
    with pytest.raises(Unavailable):
        await provider.candles("BTC", "5m", ago(0.5), FAKE_NOW)
    assert fake.count(CHART) == 1


async def test_unexpected_granularity_is_not_relabelled(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    """If CoinGecko changed its rules and sent hourly points for days=1, 5m candles must not be claimed."""
    provider = make_provider()
    fake.bodies[CHART] = load_fixture("coins_bitcoin_market_chart_days_30.json")
    with pytest.raises(Unavailable, match="coarser"):
        await provider.candles("BTC", "5m", ago(0.5), FAKE_NOW)
    assert fake.requests[0].query["days"] == "1"


async def test_bad_requests(fake: FakeCoinGecko, make_provider: ProviderFactory) -> None:
    provider = make_provider()
    with pytest.raises(Invalid, match="timeframe"):
        await provider.candles("BTC", "2h", ago(1), FAKE_NOW)
    with pytest.raises(Invalid, match="future"):
        await provider.candles("BTC", "1h", FAKE_NOW + timedelta(hours=1), FAKE_NOW + timedelta(hours=5))
    with pytest.raises(Invalid, match="time zone"):
        await provider.candles("BTC", "1h", ago(1).replace(tzinfo=None), FAKE_NOW)
    with pytest.raises(Invalid, match="365"):
        await provider.candles("BTC", "1d", ago(500), FAKE_NOW)
    assert fake.count() == 0
    unknown = make_provider()
    unknown.resolver._known["FOO"] = SymbolInfo("FOO", "not-a-coin", "Foo")
    with pytest.raises(Invalid, match="no such coin"):
        await unknown.candles("FOO", "1h", ago(1), FAKE_NOW)
    assert unknown.status().breaker_state == "closed"
