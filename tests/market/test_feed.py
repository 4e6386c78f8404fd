"""The live feed without sockets: one poller, per-channel sequence numbers, coalescing, staleness, snapshots, the
wanted-symbol union, live candles on the bus, and the source selector's auto switching (against the fake
CoinGecko on real HTTP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from aaiti.core.clock import FrozenClock
from aaiti.core.errors import Invalid, Unavailable
from aaiti.core.realtime.publisher import RecordingPublisher
from aaiti.market import feed as feed_module
from aaiti.market.feed import (
    SNAPSHOT_ROOM,
    CandleBuilder,
    CandleBus,
    LiveCandle,
    PriceFeed,
    SourceSelector,
)
from aaiti.market.provider import PriceQuote, SymbolInfo
from aaiti.market.replay import ReplayProvider
from aaiti.market.validation import to_ms
from aaiti.trading.candles import Candles
from tests.fakes.coingecko import FakeCoinGecko
from tests.market.conftest import ProviderFactory

H = 3_600_000
T0 = 1_600_000_000_000 // H * H
WALL = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOLS = [SymbolInfo("BTC", "bitcoin", "Bitcoin"), SymbolInfo("ETH", "ethereum", "Ethereum")]
BARS = {
    "BTC": Candles.from_arrays(
        [T0, T0 + H, T0 + 2 * H],
        [100.0, 105.0, 92.0],
        [110.0, 108.0, 93.0],
        [95.0, 90.0, 91.0],
        [105.0, 92.0, 92.5],
        [1.0, 1.0, 1.0],
    ),
    "ETH": Candles.from_arrays(
        [T0, T0 + H, T0 + 2 * H],
        [10.0, 11.0, 12.0],
        [11.0, 12.0, 13.0],
        [9.0, 10.0, 11.0],
        [11.0, 12.0, 12.5],
        [1.0, 1.0, 1.0],
    ),
}


def replay(clock: FrozenClock, **kwargs: Any) -> ReplayProvider:
    return ReplayProvider(lambda s: BARS.get(s), clock, symbols=SYMBOLS, speed=60.0, **kwargs)


def make_feed(
    clock: FrozenClock, *, interval_s: float = 0.05, base: tuple[str, ...] = ("BTC",), **kwargs: Any
) -> tuple[PriceFeed, RecordingPublisher, ReplayProvider]:
    provider = replay(clock)
    sources = SourceSelector("replay", coingecko=None, replay=provider, replay_symbols=["BTC", "ETH"])
    publisher = RecordingPublisher()
    feed = PriceFeed(sources, publisher, clock, interval_s=interval_s, stale_after_s=20.0, base_symbols=base, **kwargs)
    return feed, publisher, provider


def updates(publisher: RecordingPublisher, room: str = "prices:BTC") -> list[dict[str, Any]]:
    return [p for event, p, r in publisher.events if event == "price_update" and r == room]


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("aaiti_socket_messages_dropped_total", {"event": "price_update", "reason": reason})
        or 0.0
    )


@pytest.fixture
def wall() -> FrozenClock:
    return FrozenClock(WALL)


async def test_price_updates_carry_seq_and_are_sent_only_on_change(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall)
    await feed.poll_once()
    (first,) = updates(publisher)
    assert first == {
        "symbol": "BTC",
        "price": 100.0,
        "change_24h_pct": None,
        "as_of": WALL.isoformat(),
        "stale": False,
        "source": "replay",
        "seq": 1,
    }
    await asyncio.sleep(0.05)
    await feed.poll_once()
    assert len(updates(publisher)) == 1, "nothing changed: nothing sent"
    prices = []
    for _ in range(3):
        wall.advance(10)  # ten replayed minutes per step
        await asyncio.sleep(0.05)
        await feed.poll_once()
        prices.append(updates(publisher)[-1]["price"])
    seqs = [u["seq"] for u in updates(publisher)]
    assert seqs == [1, 2, 3, 4]
    assert len(set(prices)) == 3 and all(95.0 <= p <= 110.0 for p in prices)


async def test_at_most_one_update_per_symbol_per_interval(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall, interval_s=30.0)
    await feed.poll_once()
    before = dropped("coalesced")
    wall.advance(10)
    await feed.poll_once()  # the price moved, but the last update went out less than 0.9 interval ago
    assert len(updates(publisher)) == 1
    assert dropped("coalesced") == before + 1
    assert feed.quote("BTC") is not None and feed.quote("BTC").price != 100.0  # type: ignore[union-attr]


async def test_stale_when_the_source_stops_and_fresh_again_after(
    wall: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, publisher, provider = make_feed(wall)
    await feed.poll_once()
    good = updates(publisher)[-1]

    async def down(_symbols: Any) -> dict[str, PriceQuote]:
        raise Unavailable("replay store unreachable")

    monkeypatch.setattr(provider, "prices", down)
    wall.advance(10)
    await asyncio.sleep(0.05)
    await feed.poll_once()
    assert len(updates(publisher)) == 1, "not yet past the stale threshold (20 s)"
    assert feed.last_error == "replay store unreachable"
    wall.advance(11)
    await asyncio.sleep(0.05)
    await feed.poll_once()
    stale = updates(publisher)[-1]
    assert stale["stale"] is True
    assert (stale["price"], stale["as_of"]) == (good["price"], good["as_of"]), "the last good value, never invented"
    assert feed.fresh() is False
    monkeypatch.undo()
    await asyncio.sleep(0.05)
    await feed.poll_once()
    again = updates(publisher)[-1]
    assert again["stale"] is False and again["seq"] == stale["seq"] + 1
    assert feed.fresh() is True


async def test_snapshot_goes_to_its_room_with_its_own_seq(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall, base=("BTC", "ETH"), snapshot_interval_s=0.05)
    for _ in range(3):
        wall.advance(60)
        await feed.poll_once()
        await asyncio.sleep(0.06)
    snaps = [p for event, p, room in publisher.events if event == "market_data_update" and room == SNAPSHOT_ROOM]
    assert [s["seq"] for s in snaps] == [1, 2, 3]
    assert {i["symbol"] for i in snaps[-1]["items"]} == {"BTC", "ETH"}
    assert snaps[-1]["source"] == "replay"
    assert [u["seq"] for u in updates(publisher, "prices:ETH")] == [1, 2, 3], "each channel counts on its own"


async def test_wanted_is_the_union_of_base_rooms_bots_and_requests(
    wall: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rooms = ["ETH"]
    feed, _, _ = make_feed(wall, room_symbols=lambda: rooms)
    assert feed.wanted() == ["BTC", "ETH"]
    assert feed.watch("sol") == "SOL"
    feed.watch("SOL")
    feed.unwatch("SOL")
    assert "SOL" in feed.wanted()
    feed.unwatch("SOL")
    assert "SOL" not in feed.wanted()
    feed.note_interest(["XRP"])
    assert feed.wanted() == ["BTC", "ETH", "XRP"]
    monkeypatch.setattr(feed_module, "INTEREST_TTL_S", -1.0)
    assert feed.wanted() == ["BTC", "ETH"], "REST interest expires"
    monkeypatch.setattr(feed_module, "MAX_SYMBOLS", 3)
    for i in range(10):
        feed.watch(f"T{i}")
    assert len(feed.wanted()) == 3
    with pytest.raises(Invalid):
        feed.watch("not a ticker")


async def test_run_loop_polls_new_interest_without_waiting_a_whole_interval(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall, interval_s=30.0)
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.sleep(0.05)
        assert len(updates(publisher)) == 1 and updates(publisher, "prices:ETH") == []
        feed.note_interest(["ETH"])
        for _ in range(40):
            if updates(publisher, "prices:ETH"):
                break
            await asyncio.sleep(0.05)
        assert updates(publisher, "prices:ETH")[0]["price"] == 10.0
        assert feed.polls == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failing_publisher_does_not_stop_the_feed(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall)

    class Broken:
        async def publish(self, event: str, payload: dict[str, Any], room: str) -> None:
            raise ConnectionError("socket layer down")

    feed._publisher = Broken()
    await feed.poll_once()
    assert feed.quote("BTC") is not None
    feed._publisher = publisher
    wall.advance(60)
    await asyncio.sleep(0.05)
    await feed.poll_once()
    assert updates(publisher)[-1]["seq"] == 2, "the failed send still used seq 1: clients see the gap"


# ------------------------------------------------------------------------------------------------ candles


def test_candle_builder_aggregates_ticks_into_aligned_candles() -> None:
    builder = CandleBuilder("BTC", ["5m", "15m"])
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    closed: list[LiveCandle] = []
    for minute, price in [(0, 100.0), (1, 104.0), (3, 98.0), (4, 101.0), (6, 103.0), (14, 99.0), (15, 100.0)]:
        closed += builder.add(start + timedelta(minutes=minute), price, "replay")
    assert builder.add(start, 1.0, "replay") == [], "ticks from the past are ignored"
    five = [c for c in closed if c.timeframe == "5m"]
    assert [(c.open_time.minute, c.open, c.high, c.low, c.close, c.samples) for c in five] == [
        (0, 100.0, 104.0, 98.0, 101.0, 4),
        (5, 103.0, 103.0, 103.0, 103.0, 1),
        (10, 99.0, 99.0, 99.0, 99.0, 1),
    ]
    (quarter,) = [c for c in closed if c.timeframe == "15m"]
    assert (quarter.open, quarter.high, quarter.low, quarter.close, quarter.samples) == (100.0, 104.0, 98.0, 99.0, 6)
    late = builder.close_due(to_ms(start + timedelta(minutes=30)))
    assert {(c.timeframe, c.open_time.minute) for c in late} == {("5m", 15), ("15m", 15)}


async def test_bus_is_bounded_drop_oldest_and_filtered() -> None:
    bus = CandleBus()
    slow = bus.subscribe(maxsize=2)
    eth_only = bus.subscribe(symbols=["ETH"], timeframes=["1h"])
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        bus.publish(LiveCandle("BTC", "1h", t + timedelta(hours=i), 1, 1, 1, float(i), 1, "replay"))
    bus.publish(LiveCandle("ETH", "5m", t, 1, 1, 1, 1, 1, "replay"))
    bus.publish(LiveCandle("ETH", "1h", t, 1, 1, 1, 7.0, 1, "replay"))
    assert len(slow) == 2 and slow.dropped == 5, "seven published, the five oldest dropped"
    kept = [slow.get_nowait(), slow.get_nowait()]
    assert [(c.symbol, c.timeframe) for c in kept if c is not None] == [("ETH", "5m"), ("ETH", "1h")]
    assert slow.get_nowait() is None
    assert (await eth_only.get()).close == 7.0 and len(eth_only) == 0
    waiter = asyncio.create_task(eth_only.get())
    await asyncio.sleep(0)
    bus.close()
    with pytest.raises(StopAsyncIteration):
        await waiter
    assert bus.subscriber_count == 0


async def test_feed_publishes_closed_live_candles(wall: FrozenClock) -> None:
    feed, _, _ = make_feed(wall, candle_timeframes=["5m"])
    sub = feed.bus.subscribe(symbols=["BTC"])
    seen_prices = []
    for _ in range(6):
        await feed.poll_once()
        seen_prices.append(feed.quote("BTC").price)  # type: ignore[union-attr]
        wall.advance(60)
    candle = sub.get_nowait()
    assert candle is not None and sub.get_nowait() is None
    assert (candle.symbol, candle.timeframe, candle.open_time, candle.source) == ("BTC", "5m", WALL, "replay")
    first_five = seen_prices[:5]
    assert (candle.open, candle.close, candle.samples) == (first_five[0], first_five[-1], 5)
    assert (candle.high, candle.low) == (max(first_five), min(first_five))


# ------------------------------------------------------------------------------------------ source selector


async def test_auto_mode_switches_to_coingecko_when_it_answers_and_back_on_a_long_outage(
    fake: FakeCoinGecko, make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    coingecko = make_provider(breaker_failure_threshold=2, max_attempts=1)
    provider = ReplayProvider(lambda s: BARS.get(s), clock, symbols=SYMBOLS)
    sources = SourceSelector("auto", coingecko=coingecko, replay=provider, replay_symbols=["BTC", "ETH"])
    feed = PriceFeed(sources, RecordingPublisher(), clock, interval_s=0.01, stale_after_s=120.0, base_symbols=["BTC"])
    switches: list[tuple[str, str]] = []
    sources.on_switch(lambda old, new: switches.append((old, new)))
    assert sources.source == "replay"
    await feed.poll_once()
    assert feed.quote("BTC").source == "replay"  # type: ignore[union-attr]

    fake.outage = True
    await sources.probe(clock.now())
    assert sources.source == "replay" and fake.count("/ping") == 1
    fake.outage = False
    clock.advance(60)  # the breaker (one failure so far) stays closed; ping again
    await sources.probe(clock.now())
    assert sources.source == "coingecko" and switches == [("replay", "coingecko")]
    assert feed.quote("BTC").stale is True, "a replayed price is stale once CoinGecko is the source"  # type: ignore[union-attr]
    assert sources.can_price("SOL") and not sources.can_price("ZZZ")
    await feed.poll_once()
    assert (feed.quote("BTC").source, feed.quote("BTC").price) == ("coingecko", 31723.09)  # type: ignore[union-attr]

    fake.outage = True
    for _ in range(3):
        clock.advance(60)
        await feed.poll_once()
        await sources.probe(clock.now())
    assert coingecko.status().breaker_state == "open"
    assert sources.source == "replay" and switches[-1] == ("coingecko", "replay")


async def test_selector_validates_symbols_against_the_active_source(
    make_provider: ProviderFactory, clock: FrozenClock
) -> None:
    only_replay = SourceSelector("replay", coingecko=None, replay=replay(clock), replay_symbols=["BTC"])
    assert await only_replay.validate("btc-usd") == "BTC"
    with pytest.raises(Invalid, match="no replay history"):
        await only_replay.validate("SOL")
    gecko = SourceSelector("coingecko", coingecko=make_provider(), replay=None)
    assert await gecko.validate("sol") == "SOL"
    with pytest.raises(Invalid):
        await gecko.validate("NOSUCHCOIN")
    with pytest.raises(ValueError, match="needs"):
        SourceSelector("auto", coingecko=None, replay=replay(clock))


async def test_symbols_nobody_wants_any_more_are_forgotten_but_seq_keeps_counting(wall: FrozenClock) -> None:
    feed, publisher, _ = make_feed(wall, base=("BTC",))
    feed.watch("ETH")
    await feed.poll_once()
    assert set(feed.quotes()) == {"BTC", "ETH"}
    feed.unwatch("ETH")
    wall.advance(10)
    await asyncio.sleep(0.05)
    await feed.poll_once()
    assert set(feed.quotes()) == {"BTC"}, "ETH left the cache (and the snapshot) once unwatched"
    feed.watch("ETH")
    wall.advance(10)
    await asyncio.sleep(0.05)
    await feed.poll_once()
    assert [u["seq"] for u in updates(publisher, "prices:ETH")] == [1, 2], "the channel's seq never restarts"
