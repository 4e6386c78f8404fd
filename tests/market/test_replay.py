"""Replay: stored candles played as live ticks, deterministic and inside each bar's range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from aaiti.core.clock import FrozenClock
from aaiti.core.errors import Invalid
from aaiti.data import load_bundled
from aaiti.market.provider import MarketDataProvider, SymbolInfo
from aaiti.market.replay import ReplayProvider, bar_path_price, bundled_source
from aaiti.market.validation import from_ms, to_ms
from aaiti.trading.candles import Candles

H = 3_600_000
T0 = 1_600_000_000_000 // H * H
WALL = datetime(2026, 1, 1, tzinfo=UTC)
BTC = SymbolInfo("BTC", "bitcoin", "Bitcoin")

BARS = Candles.from_arrays(
    [T0, T0 + H, T0 + 2 * H],
    [100.0, 105.0, 92.0],
    [110.0, 108.0, 93.0],
    [95.0, 90.0, 91.0],
    [105.0, 92.0, 92.5],
    [1.0, 1.0, 1.0],
)


def make(clock: FrozenClock, **kwargs: object) -> ReplayProvider:
    return ReplayProvider(lambda s: BARS if s == "BTC" else None, clock, symbols=[BTC], **kwargs)  # type: ignore[arg-type]


async def price_at(clock: FrozenClock, provider: ReplayProvider, seconds: float) -> float:
    clock.advance(seconds - (clock.now() - WALL).total_seconds())
    return (await provider.prices(["BTC"]))["BTC"].price


def test_bar_path_walks_open_low_high_close_for_a_rising_bar() -> None:
    assert [bar_path_price(100, 110, 95, 105, f) for f in (0, 1 / 3, 2 / 3, 1)] == pytest.approx([100, 95, 110, 105])
    assert [bar_path_price(105, 108, 90, 92, f) for f in (0, 1 / 3, 2 / 3, 1)] == pytest.approx([105, 108, 90, 92])
    assert bar_path_price(100, 110, 95, 105, 0.5) == pytest.approx(102.5)


async def test_one_hourly_bar_per_second_along_the_path() -> None:
    clock = FrozenClock(WALL)
    replay = make(clock, speed=3600.0)
    assert isinstance(replay, MarketDataProvider)
    quote = (await replay.prices(["btc"]))["BTC"]
    assert (quote.price, quote.source, quote.stale) == (100.0, "replay", False)
    assert quote.as_of == WALL
    assert quote.replayed_bar_time == from_ms(T0)
    assert await price_at(clock, replay, 1 / 3) == pytest.approx(95.0)
    assert await price_at(clock, replay, 2 / 3) == pytest.approx(110.0)
    assert await price_at(clock, replay, 1.0) == pytest.approx(105.0)  # next bar opens
    assert await price_at(clock, replay, 1 + 1 / 3) == pytest.approx(108.0)  # falling bar: high first
    quote = (await replay.prices(["BTC"]))["BTC"]
    assert quote.replayed_bar_time == from_ms(T0 + H)
    assert quote.as_of == WALL + timedelta(seconds=1 + 1 / 3)


async def test_loop_and_end_of_history() -> None:
    clock = FrozenClock(WALL)
    looping = make(clock)
    held = make(clock, loop=False)
    clock.advance(3.0)  # exactly the end of the third bar
    assert (await looping.prices(["BTC"]))["BTC"].price == pytest.approx(100.0)  # back to the first open
    quote = (await held.prices(["BTC"]))["BTC"]
    assert quote.price == pytest.approx(92.5)  # last close held ...
    assert quote.stale  # ... and flagged
    assert held.status().stale


async def test_ticks_are_deterministic_and_inside_each_bar() -> None:
    data = load_bundled("BTC-USD_1h")
    start = from_ms(int(data.ts[1000]))
    clock_a, clock_b = FrozenClock(WALL), FrozenClock(WALL)
    a = ReplayProvider(bundled_source(), clock_a, start=start)
    b = ReplayProvider(bundled_source(), clock_b, start=start)
    for _ in range(200):
        qa, qb = (await a.prices(["BTC"]))["BTC"], (await b.prices(["BTC"]))["BTC"]
        assert qa == qb
        assert qa.replayed_bar_time is not None
        i = int(np.searchsorted(data.ts, to_ms(qa.replayed_bar_time)))
        assert data.low[i] - 1e-9 <= qa.price <= data.high[i] + 1e-9
        clock_a.advance(0.37)
        clock_b.advance(0.37)


async def test_change_24h_and_candles_only_up_to_the_replay_position() -> None:
    data = load_bundled("BTC-USD_1h")
    start = from_ms(int(data.ts[5000]))
    clock = FrozenClock(WALL)
    replay = ReplayProvider(bundled_source(), clock, start=start, speed=3600.0)
    clock.advance(30.0)  # 30 hourly bars played
    quote = (await replay.prices(["BTC"]))["BTC"]
    assert quote.replayed_bar_time == from_ms(int(data.ts[5030]))
    assert quote.price == pytest.approx(data.open[5030])
    assert quote.change_24h_pct == pytest.approx((data.open[5030] / data.open[5006] - 1) * 100)

    series = await replay.history("BTC", "1h", 5)
    assert series.source == "replay"
    assert series.kind == "stored"
    assert series.granularity_ms == H
    np.testing.assert_array_equal(series.candles.ts, data.ts[5025:5030])  # bar 5030 is still open
    window = await replay.candles("BTC", "4h", from_ms(int(data.ts[4990])), from_ms(int(data.ts[5030])))
    assert all(t % (4 * H) == 0 for t in window.candles.ts.tolist())
    assert int(window.candles.ts[-1]) + 4 * H <= int(data.ts[5030])
    with pytest.raises(Invalid, match="coarser"):
        await replay.candles("BTC", "15m", start, start + timedelta(days=1))


async def test_async_source_unknown_symbol_search_and_status() -> None:
    async def source(symbol: str) -> Candles | None:
        return BARS if symbol == "BTC" else None

    clock = FrozenClock(WALL)
    replay = ReplayProvider(source, clock, symbols=[BTC, SymbolInfo("ETH", "ethereum", "Ethereum")])
    assert (await replay.prices(["BTC"]))["BTC"].price == 100.0
    with pytest.raises(Invalid):
        await replay.prices(["ETH"])  # listed but nothing stored
    with pytest.raises(Invalid):
        await replay.prices(["DOGE"])  # not replayable
    assert [s.symbol for s in await replay.search("bit")] == ["BTC"]
    status = replay.status()
    assert status.source == "replay"
    assert status.breaker_state == "none"
    assert status.detail["position.BTC"] == from_ms(T0).isoformat()
