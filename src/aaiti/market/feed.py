"""The live feed: one poller for every price anyone watches, fanned out to sockets and bots.

- :class:`SourceSelector` — which provider is active. ``coingecko`` and ``replay`` are fixed; ``auto`` starts on
  replay (instant, offline-safe) and switches to CoinGecko once ``/ping`` answers, and back to replay only after a
  long outage (breaker open and the prices stale), so a short blip shows stale CoinGecko values rather than a
  jump to replayed history.
- :class:`PriceFeed` — ONE background poller (fan-in: upstream calls do not grow with users or sockets). Each
  cycle asks the active provider for the union of the configured symbols, the symbols of joined ``prices:{SYM}``
  rooms, symbols bots :meth:`~PriceFeed.watch`, and symbols REST callers asked for recently. It keeps the last
  quote per symbol (REST reads only this cache), emits ``price_update`` to ``prices:{SYM}`` and a periodic
  ``market_data_update`` snapshot to ``market:snapshot``, builds live candles from the ticks and publishes the
  closed ones on a :class:`CandleBus`.

Delivery rules: at most one ``price_update`` per symbol per 0.9 poll interval (extra ones are coalesced); an update
is sent only when the price, its ``as_of`` or its ``stale`` flag changed; every payload carries ``as_of``, ``stale``,
``source`` and ``seq``, a counter per channel (room) that only grows while the process lives. Publishing goes
through :class:`~aaiti.core.realtime.publisher.Publisher`, which queues a packet per client and never waits for one.

Time: ``as_of`` and staleness use the injected :class:`~aaiti.core.clock.Clock`; the polling cadence uses the
event loop's clock (an operational timer, not domain time).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import structlog

from aaiti.core.clock import Clock
from aaiti.core.errors import Invalid, TooManyRequests, Unavailable
from aaiti.core.realtime.publisher import Publisher
from aaiti.market import metrics
from aaiti.market.coingecko import CoinGeckoProvider
from aaiti.market.provider import MarketDataProvider, PriceQuote, ProviderStatus
from aaiti.market.replay import ReplayProvider
from aaiti.market.symbols import normalize_symbol
from aaiti.market.validation import from_ms, to_ms
from aaiti.trading.candles import TIMEFRAME_MS

log = structlog.get_logger(__name__)

SourceMode = Literal["coingecko", "replay", "auto"]
SNAPSHOT_ROOM: Final = "market:snapshot"
PRICE_EVENT: Final = "price_update"
SNAPSHOT_EVENT: Final = "market_data_update"
#: Emission spacing per symbol, as a fraction of the poll interval (scheduling jitter must not drop ticks).
MIN_SPACING_FRACTION: Final = 0.9
#: Symbols followed at once; beyond this, new interest is ignored (upstream calls and metric labels stay bounded).
MAX_SYMBOLS: Final = 200
#: A symbol asked for over REST stays polled this long after the last request.
INTEREST_TTL_S: Final = 600.0
#: A wake-up poll for newly wanted symbols happens at most this often.
WAKE_MIN_GAP_S: Final = 0.5


def price_room(symbol: str) -> str:
    return f"prices:{symbol}"


# --------------------------------------------------------------------------------------------- source selection


class SourceSelector:
    """Holds the providers the mode allows and says which one is active.

    ``replay_symbols`` are the tickers replay has history for (``can_price`` must answer without I/O).
    """

    def __init__(
        self,
        mode: SourceMode,
        *,
        coingecko: CoinGeckoProvider | None,
        replay: ReplayProvider | None,
        replay_symbols: Iterable[str] = (),
    ) -> None:
        if mode in ("coingecko", "auto") and coingecko is None:
            raise ValueError(f"mode {mode!r} needs a CoinGecko provider")
        if mode in ("replay", "auto") and replay is None:
            raise ValueError(f"mode {mode!r} needs a replay provider")
        self.mode: SourceMode = mode
        self.coingecko = coingecko
        self.replay = replay
        self.replay_symbols = frozenset(replay_symbols)
        self._active: MarketDataProvider = coingecko if mode == "coingecko" else replay  # type: ignore[assignment]
        self._listeners: list[Callable[[str, str], None]] = []
        self.switched_at: datetime | None = None

    @property
    def active(self) -> MarketDataProvider:
        return self._active

    @property
    def source(self) -> str:
        return self._active.source

    def on_switch(self, listener: Callable[[str, str], None]) -> None:
        """``listener(old_source, new_source)`` runs synchronously after each switch."""
        self._listeners.append(listener)

    def _switch(self, to: MarketDataProvider, reason: str, now: datetime) -> None:
        if to is self._active:
            return
        old = self._active.source
        self._active = to
        self.switched_at = now
        log.warning("market_source_switched", old=old, new=to.source, reason=reason)
        for listener in self._listeners:
            listener(old, to.source)

    async def probe(self, now: datetime) -> None:
        """``auto`` only: move to CoinGecko when it answers ``/ping``; fall back to replay during a long outage
        (breaker open and the prices it holds stale). Costs at most one upstream call."""
        if self.mode != "auto" or self.coingecko is None or self.replay is None:
            return
        if self._active is self.replay:
            if await self.coingecko.ping():
                self._switch(self.coingecko, "CoinGecko answers /ping", now)
            return
        status = self.coingecko.status()
        if status.breaker_state == "open" and status.stale:
            self._switch(self.replay, f"CoinGecko outage: {status.last_error or 'breaker open'}", now)

    def can_price(self, symbol: str) -> bool:
        """Whether the active source can price ``symbol`` (a normalised ticker), without I/O."""
        if self._active is self.replay:
            return symbol in self.replay_symbols
        assert self.coingecko is not None
        return self.coingecko.resolver.cached(symbol) is not None

    async def validate(self, symbol: str) -> str:
        """Normalise ``symbol`` and check the active source knows it; may spend one (rate-capped, cached)
        ``/search`` call to resolve an unknown ticker on CoinGecko. Raises ``Invalid`` (or ``TooManyRequests``)."""
        ticker = normalize_symbol(symbol)
        if self._active is self.replay:
            if ticker not in self.replay_symbols:
                known = ", ".join(sorted(self.replay_symbols)) or "none"
                raise Invalid(f"no replay history for {ticker!r} (replay has: {known})")
            return ticker
        assert self.coingecko is not None
        info = await self.coingecko.resolver.resolve(ticker, self.coingecko.config.vs_currency)
        return info.symbol

    def status(self) -> ProviderStatus:
        return self._active.status()


# ----------------------------------------------------------------------------------------------- candle bus


@dataclass(frozen=True, slots=True)
class LiveCandle:
    """A closed candle built from live ticks (wall time). High/low are the extremes of the *samples* the feed saw
    (one per poll), so ``samples`` says how dense it is; volume is unknown. ``open_time`` is UTC."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    samples: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "t": to_ms(self.open_time),
            "o": self.open,
            "h": self.high,
            "l": self.low,
            "c": self.close,
            "samples": self.samples,
            "source": self.source,
        }


class CandleSubscription:
    """A bounded queue of closed candles for one consumer. When it is full the *oldest* candle is dropped (a bot
    that falls behind acts on recent data, never on a backlog); ``dropped`` counts them."""

    def __init__(self, bus: CandleBus, maxsize: int, symbols: frozenset[str] | None, timeframes: frozenset[str] | None):
        self._bus = bus
        self._queue: deque[LiveCandle] = deque()
        self._maxsize = maxsize
        self._symbols = symbols
        self._timeframes = timeframes
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def wants(self, candle: LiveCandle) -> bool:
        return (self._symbols is None or candle.symbol in self._symbols) and (
            self._timeframes is None or candle.timeframe in self._timeframes
        )

    def _put(self, candle: LiveCandle) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
            metrics.CANDLE_BUS_DROPPED.inc()
        self._queue.append(candle)
        self._ready.set()

    def get_nowait(self) -> LiveCandle | None:
        return self._queue.popleft() if self._queue else None

    async def get(self) -> LiveCandle:
        """The next candle, waiting for one; raises ``StopAsyncIteration`` once closed and drained."""
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[LiveCandle]:
        return self

    async def __anext__(self) -> LiveCandle:
        return await self.get()

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._bus._remove(self)

    def __len__(self) -> int:
        return len(self._queue)


class CandleBus:
    """In-process pub/sub of closed live candles. ``publish`` never waits: each subscriber has its own bounded
    queue with drop-oldest, so one slow consumer cannot hold up the feed or the others."""

    def __init__(self) -> None:
        self._subscribers: list[CandleSubscription] = []

    def subscribe(
        self,
        *,
        symbols: Iterable[str] | None = None,
        timeframes: Iterable[str] | None = None,
        maxsize: int = 256,
    ) -> CandleSubscription:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        sub = CandleSubscription(
            self,
            maxsize,
            None if symbols is None else frozenset(symbols),
            None if timeframes is None else frozenset(timeframes),
        )
        self._subscribers.append(sub)
        return sub

    def publish(self, candle: LiveCandle) -> None:
        for sub in self._subscribers:
            if sub.wants(candle):
                sub._put(candle)

    def _remove(self, sub: CandleSubscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


@dataclass(slots=True)
class _Building:
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    samples: int
    source: str


class CandleBuilder:
    """Aggregates ticks of one symbol into candles of several timeframes, aligned to the UTC epoch.

    A candle closes when a tick lands in a later bucket or when :meth:`close_due` is called past its end. Ticks
    must not go back in time (older ones are ignored). Empty buckets give no candle (gaps stay gaps).
    """

    def __init__(self, symbol: str, timeframes: Sequence[str]) -> None:
        self.symbol = symbol
        self._timeframes = {tf: TIMEFRAME_MS[tf] for tf in timeframes}
        self._open: dict[str, _Building] = {}
        self._last_ms: int | None = None

    def add(self, at: datetime, price: float, source: str) -> list[LiveCandle]:
        at_ms = to_ms(at)
        if self._last_ms is not None and at_ms <= self._last_ms:
            return []
        self._last_ms = at_ms
        closed = self.close_due(at_ms)
        for tf, size in self._timeframes.items():
            bucket = at_ms // size * size
            current = self._open.get(tf)
            if current is None:
                self._open[tf] = _Building(bucket, price, price, price, price, 1, source)
            else:
                current.high = max(current.high, price)
                current.low = min(current.low, price)
                current.close = price
                current.samples += 1
        return closed

    def close_due(self, now_ms: int) -> list[LiveCandle]:
        closed: list[LiveCandle] = []
        for tf, size in self._timeframes.items():
            current = self._open.get(tf)
            if current is not None and now_ms >= current.open_ms + size:
                closed.append(
                    LiveCandle(
                        self.symbol,
                        tf,
                        from_ms(current.open_ms),
                        current.open,
                        current.high,
                        current.low,
                        current.close,
                        current.samples,
                        current.source,
                    )
                )
                del self._open[tf]
        return closed


# ------------------------------------------------------------------------------------------------------ feed


@dataclass(slots=True)
class _Emitted:
    price: float
    as_of: datetime
    stale: bool
    source: str
    at: float  # loop time


@dataclass(slots=True)
class FeedStatus:
    interval_s: float
    symbols: list[str]
    last_poll: datetime | None
    last_error: str | None
    polls: int
    watchers: dict[str, int] = field(default_factory=dict)


class PriceFeed:
    """See the module docstring. ``room_symbols`` returns the tickers of ``prices:*`` rooms that currently have
    members; ``base_symbols`` are always polled."""

    def __init__(
        self,
        sources: SourceSelector,
        publisher: Publisher,
        clock: Clock,
        *,
        interval_s: float,
        stale_after_s: float | Mapping[str, float],
        base_symbols: Iterable[str] = (),
        room_symbols: Callable[[], Iterable[str]] = lambda: (),
        bus: CandleBus | None = None,
        candle_timeframes: Sequence[str] = ("5m", "15m", "30m", "1h", "4h", "1d"),
        snapshot_interval_s: float | None = None,
    ) -> None:
        limits = {"*": stale_after_s} if isinstance(stale_after_s, int | float) else dict(stale_after_s)
        if interval_s <= 0 or not limits or min(limits.values()) <= 0:
            raise ValueError("interval and stale thresholds must be positive")
        self.sources = sources
        self._publisher = publisher
        self._clock = clock
        self.interval_s = interval_s
        self._stale_limits = limits
        self.snapshot_interval_s = snapshot_interval_s if snapshot_interval_s is not None else max(interval_s, 5.0)
        self._base = [normalize_symbol(s) for s in base_symbols]
        self._room_symbols = room_symbols
        self.bus = bus or CandleBus()
        self._timeframes = tuple(candle_timeframes)
        self._cache: dict[str, PriceQuote] = {}
        self._emitted: dict[str, _Emitted] = {}
        self._seq: dict[str, int] = {}
        self._builders: dict[str, CandleBuilder] = {}
        self._watchers: dict[str, int] = {}
        self._interest: dict[str, float] = {}  # ticker -> loop time of the last REST request
        self._wake = asyncio.Event()
        self._last_snapshot = -math.inf
        self._last_wake_poll = -math.inf
        self.last_poll: datetime | None = None
        self.last_error: str | None = None
        self.polls = 0
        sources.on_switch(self._on_switch)

    def stale_after(self, source: str) -> float:
        """Age (seconds) past which a quote of ``source`` is stale; a source without its own limit uses the
        largest configured one."""
        return self._stale_limits.get(source, max(self._stale_limits.values()))

    # ---------------------------------------------------------------------------------------------- interest

    def watch(self, symbol: str) -> str:
        """A bot needs ``symbol`` polled (reference-counted); returns the ticker. Call :meth:`unwatch` when done."""
        ticker = normalize_symbol(symbol)
        self._watchers[ticker] = self._watchers.get(ticker, 0) + 1
        self._wake.set()
        return ticker

    def unwatch(self, symbol: str) -> None:
        ticker = normalize_symbol(symbol)
        left = self._watchers.get(ticker, 0) - 1
        if left > 0:
            self._watchers[ticker] = left
        else:
            self._watchers.pop(ticker, None)

    def note_interest(self, symbols: Iterable[str]) -> None:
        """REST callers or socket subscribers asked for these (normalised) tickers: poll them for a while, and
        soon if they have no price yet."""
        now = self._loop_time()
        fresh = False
        for ticker in symbols:
            self._interest[ticker] = now
            fresh = fresh or self._needs_first_price(ticker)
        if fresh:
            self._wake.set()

    def wanted(self) -> list[str]:
        """The symbols the next poll asks for: base ∪ joined rooms ∪ watched ∪ recent REST interest, capped."""
        horizon = self._loop_time() - INTEREST_TTL_S
        for ticker in [t for t, at in self._interest.items() if at < horizon]:
            del self._interest[ticker]
        out: dict[str, None] = {}
        for group in (self._base, self._watchers, self._room_symbols(), self._interest):
            for ticker in group:
                if len(out) >= MAX_SYMBOLS:
                    break
                out[ticker] = None
        return list(out)

    # -------------------------------------------------------------------------------------------------- reads

    def quote(self, symbol: str) -> PriceQuote | None:
        """The cached quote with ``stale`` re-evaluated now; ``None`` if the feed has none."""
        quote = self._cache.get(symbol)
        return None if quote is None else self._fresh_view(quote)

    def quotes(self, symbols: Iterable[str] | None = None) -> dict[str, PriceQuote]:
        keys = list(self._cache) if symbols is None else [s for s in symbols if s in self._cache]
        return {s: self._fresh_view(self._cache[s]) for s in keys}

    def _fresh_view(self, quote: PriceQuote) -> PriceQuote:
        age = (self._clock.now() - quote.as_of).total_seconds()
        stale = quote.stale or age > self.stale_after(quote.source) or quote.source != self.sources.source
        if stale == quote.stale:
            return quote
        return PriceQuote(
            quote.symbol, quote.price, quote.change_24h_pct, quote.as_of, stale, quote.source, quote.replayed_bar_time
        )

    def status(self) -> FeedStatus:
        return FeedStatus(
            self.interval_s, self.wanted(), self.last_poll, self.last_error, self.polls, dict(self._watchers)
        )

    def data_age_s(self) -> float | None:
        """Age of the oldest cached quote of the active source (``None`` when there is none)."""
        now = self._clock.now()
        ages = [(now - q.as_of).total_seconds() for q in self._cache.values() if q.source == self.sources.source]
        return max(ages) if ages else None

    def fresh(self) -> bool:
        """At least one price of the active source is cached and not stale."""
        return any(not self._fresh_view(q).stale for q in self._cache.values())

    # ---------------------------------------------------------------------------------------------- payloads

    @staticmethod
    def payload(quote: PriceQuote) -> dict[str, Any]:
        return {
            "symbol": quote.symbol,
            "price": quote.price,
            "change_24h_pct": quote.change_24h_pct,
            "as_of": quote.as_of.isoformat(),
            "stale": quote.stale,
            "source": quote.source,
        }

    def _next_seq(self, channel: str) -> int:
        value = self._seq.get(channel, 0) + 1
        self._seq[channel] = value
        return value

    # -------------------------------------------------------------------------------------------------- loop

    @staticmethod
    def _loop_time() -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            import time

            return time.monotonic()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Poll forever: every ``interval_s`` for all wanted symbols (fixed cadence, missed ticks skipped), and
        in between, at most every :data:`WAKE_MIN_GAP_S`, for newly wanted symbols that have no price yet."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if loop.time() >= next_at:
                await self._cycle(self.wanted())
                next_at += self.interval_s
                if next_at <= loop.time():
                    next_at = loop.time() + self.interval_s
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), next_at - loop.time())
            except TimeoutError:
                continue
            self._wake.clear()
            gap = self._last_wake_poll + WAKE_MIN_GAP_S - loop.time()
            if gap > 0:
                await asyncio.sleep(min(gap, max(0.0, next_at - loop.time())))
            if loop.time() >= next_at:
                continue
            self._last_wake_poll = loop.time()
            new = [s for s in self.wanted() if self._needs_first_price(s)]
            if new:
                await self._cycle(new, regular=False)

    def _needs_first_price(self, ticker: str) -> bool:
        quote = self._cache.get(ticker)
        return quote is None or quote.source != self.sources.source

    async def poll_once(self) -> None:
        """One regular cycle for all wanted symbols (tests and start-up)."""
        await self._cycle(self.wanted())

    async def _cycle(self, symbols: list[str], *, regular: bool = True) -> None:
        try:
            await self._poll(symbols)
            if regular:
                self._forget_unwanted(symbols)
            await self._publish(symbols, regular=regular)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the poller must survive anything a provider or publisher does
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("feed_cycle_failed")

    async def _poll(self, symbols: list[str]) -> None:
        provider = self.sources.active
        priceable = [s for s in symbols if self.sources.can_price(s)]
        self.polls += 1
        self.last_poll = self._clock.now()
        if not priceable:
            return
        try:
            quotes = await provider.prices(priceable)
            self.last_error = None
        except Unavailable as exc:
            self.last_error = exc.detail
            quotes = {}
        except (Invalid, TooManyRequests) as exc:
            # one bad symbol must not starve the rest: ask one by one (rare; symbols are validated on entry)
            self.last_error = exc.detail
            quotes = {}
            for ticker in priceable:
                try:
                    quotes.update(await provider.prices([ticker]))
                except (Invalid, Unavailable, TooManyRequests):
                    continue
        now = self._clock.now()
        for ticker, quote in quotes.items():
            previous = self._cache.get(ticker)
            self._cache[ticker] = quote
            metrics.observe_data_age(ticker, (now - quote.as_of).total_seconds())
            if not quote.stale and (previous is None or quote.as_of != previous.as_of or previous.stale):
                self._add_tick(quote)
        for ticker, quote in self._cache.items():
            if ticker not in quotes:
                metrics.observe_data_age(ticker, (now - quote.as_of).total_seconds())
        now_ms = to_ms(now)
        for builder in self._builders.values():
            for candle in builder.close_due(now_ms):
                self.bus.publish(candle)

    def _forget_unwanted(self, wanted: list[str]) -> None:
        """Drop what nobody wants any more (cache, live candles, the age gauge); ``seq`` counters stay so a channel
        never repeats a number while the process lives."""
        keep = set(wanted)
        for ticker in [t for t in self._cache if t not in keep]:
            del self._cache[ticker]
            self._emitted.pop(ticker, None)
            self._builders.pop(ticker, None)
            metrics.forget_symbol(ticker)

    def _add_tick(self, quote: PriceQuote) -> None:
        builder = self._builders.get(quote.symbol)
        if builder is None:
            builder = self._builders[quote.symbol] = CandleBuilder(quote.symbol, self._timeframes)
        for candle in builder.add(quote.as_of, quote.price, quote.source):
            self.bus.publish(candle)

    async def _publish(self, symbols: list[str], *, regular: bool) -> None:
        loop_now = self._loop_time()
        min_gap = self.interval_s * MIN_SPACING_FRACTION
        sends: list[Any] = []
        for ticker in symbols:
            quote = self.quote(ticker)
            if quote is None:
                continue
            last = self._emitted.get(ticker)
            if last is not None and (last.price, last.as_of, last.stale, last.source) == (
                quote.price,
                quote.as_of,
                quote.stale,
                quote.source,
            ):
                continue
            if last is not None and loop_now - last.at < min_gap:
                metrics.SOCKET_MESSAGES_DROPPED.labels(PRICE_EVENT, "coalesced").inc()
                continue
            self._emitted[ticker] = _Emitted(quote.price, quote.as_of, quote.stale, quote.source, loop_now)
            room = price_room(ticker)
            payload = {**self.payload(quote), "seq": self._next_seq(room)}
            if not quote.stale:
                metrics.FEED_LAG.observe(max(0.0, (self._clock.now() - quote.as_of).total_seconds()))
            sends.append(self._send(PRICE_EVENT, payload, room))
        if regular and loop_now - self._last_snapshot >= self.snapshot_interval_s * MIN_SPACING_FRACTION:
            items = [self.payload(q) for q in self.quotes().values()]
            if items:
                self._last_snapshot = loop_now
                payload = {
                    "items": items,
                    "as_of": self._clock.now().isoformat(),
                    "source": self.sources.source,
                    "seq": self._next_seq(SNAPSHOT_ROOM),
                }
                sends.append(self._send(SNAPSHOT_EVENT, payload, SNAPSHOT_ROOM))
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, event: str, payload: dict[str, Any], room: str) -> None:
        try:
            await self._publisher.publish(event, payload, room)
        except Exception:
            metrics.SOCKET_MESSAGES_DROPPED.labels(event, "publish_failed").inc()
            log.exception("feed_publish_failed", room=room)
            return
        metrics.SOCKET_MESSAGES_SENT.labels(event).inc()

    def _on_switch(self, old: str, new: str) -> None:
        # Live candles must not mix sources; the cached quotes stay (shown stale) until the new source answers.
        self._builders.clear()
        self._wake.set()
