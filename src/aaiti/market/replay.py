"""Replay: stored real candles played back as live prices (offline/demo mode and tests).

Time mapping: the replay starts at wall time ``t0`` (the clock's ``now()`` when the provider is built) and history
time advances ``speed`` times faster than the wall clock (``speed=3600`` plays one hourly bar per second). Inside a
bar the price walks a fixed path — open → low → high → close for a rising bar, open → high → low → close for a falling
one, each leg a third of the bar — so every tick is a price the market really traded between, and two runs with the
same clock give the same ticks. Across a gap in the data the last close is held (nothing is interpolated).

Every quote says ``source="replay"``, ``as_of`` is the wall time of the tick and ``replayed_bar_time`` the open time
of the historical bar it comes from. Candles keep their original (historical) times.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from aaiti.core.clock import Clock
from aaiti.core.errors import Invalid
from aaiti.market.provider import CandleSeries, PriceQuote, ProviderStatus, SymbolInfo
from aaiti.market.resample import between, completed, resample, timeframe_ms
from aaiti.market.symbols import DEFAULT_SYMBOLS, normalize_symbol
from aaiti.market.validation import from_ms, to_ms
from aaiti.trading.candles import TIMEFRAME_MS, Candles

SOURCE: Final = "replay"
DAY_MS: Final = 86_400_000

#: ``symbol -> candles`` (or ``None`` when the symbol has no stored history); may be sync or async.
ReplaySource = Callable[[str], Awaitable[Candles | None] | Candles | None]

#: Bundled datasets used by :func:`bundled_source`; they overlap from 2018-05-15 to 2020-01-17.
BUNDLED_REPLAY: Final[dict[str, str]] = {"BTC": "BTC-USD_1h", "ETH": "ETH-USD_1d", "LTC": "LTC-USD_1d"}


def bundled_source(mapping: dict[str, str] | None = None) -> ReplaySource:
    """A :data:`ReplaySource` reading the candles shipped in :mod:`aaiti.data` (no network, no database)."""
    from aaiti.data import load_bundled

    names = dict(BUNDLED_REPLAY if mapping is None else mapping)

    def source(symbol: str) -> Candles | None:
        name = names.get(symbol)
        return None if name is None else load_bundled(name)

    return source


def bar_path_price(o: float, h: float, low: float, c: float, frac: float) -> float:
    """Price at ``frac`` ∈ [0, 1] of a bar walking open → extreme → extreme → close in three equal legs."""
    first, second = (low, h) if c >= o else (h, low)
    points = (o, first, second, c)
    x = min(max(frac, 0.0), 1.0) * 3.0
    leg = min(int(x), 2)
    t = x - leg
    return points[leg] + (points[leg + 1] - points[leg]) * t


@dataclass(frozen=True, slots=True)
class _Track:
    candles: Candles
    granularity_ms: int
    anchor_ms: int  # history time shown at wall time t0

    @property
    def first_ms(self) -> int:
        return int(self.candles.ts[0])

    @property
    def end_ms(self) -> int:
        return int(self.candles.ts[-1]) + self.granularity_ms


class ReplayProvider:
    """:class:`~aaiti.market.provider.MarketDataProvider` that plays stored candles as live ticks.

    ``candle_source`` gives a symbol's stored candles (strictly increasing open times). ``speed`` is history seconds
    per wall second. ``start`` is the history time to begin at (default: each symbol's first bar; clamped into the
    symbol's range). With ``loop`` the history restarts when it runs out; without it the last close is held and
    flagged stale.
    """

    def __init__(
        self,
        candle_source: ReplaySource,
        clock: Clock,
        *,
        symbols: Sequence[SymbolInfo] | None = None,
        speed: float = 3600.0,
        start: datetime | None = None,
        loop: bool = True,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._source = candle_source
        self._clock = clock
        known = symbols if symbols is not None else [s for s in DEFAULT_SYMBOLS if s.symbol in BUNDLED_REPLAY]
        self._symbols = {s.symbol: s for s in known}
        self.speed = speed
        self._start_ms = None if start is None else to_ms(start)
        self.loop = loop
        self._t0 = clock.now()
        self._tracks: dict[str, _Track] = {}
        self._lock = asyncio.Lock()

    @property
    def source(self) -> str:
        return SOURCE

    async def aclose(self) -> None:
        self._tracks.clear()

    def _position(self, track: _Track) -> tuple[int, bool]:
        """History time now playing for ``track`` and whether the replay has run out (no loop)."""
        elapsed_ms = (self._clock.now() - self._t0).total_seconds() * 1000.0
        position = track.anchor_ms + int(elapsed_ms * self.speed)
        if position < track.end_ms:
            return position, False
        if not self.loop:
            return track.end_ms, True
        span = track.end_ms - track.first_ms
        return track.first_ms + (position - track.first_ms) % span, False

    async def _track(self, symbol: str) -> tuple[str, _Track]:
        ticker = normalize_symbol(symbol)
        if ticker not in self._symbols:
            raise Invalid(f"no stored history to replay for {ticker!r}")
        track = self._tracks.get(ticker)
        if track is not None:
            return ticker, track
        async with self._lock:
            if ticker not in self._tracks:
                loaded = self._source(ticker)
                candles = await loaded if inspect.isawaitable(loaded) else loaded
                if candles is None or len(candles) < 2:
                    raise Invalid(f"no stored history to replay for {ticker!r}")
                granularity = int(np.median(np.diff(candles.ts)))
                first, end = int(candles.ts[0]), int(candles.ts[-1]) + granularity
                anchor = first if self._start_ms is None or not first <= self._start_ms < end else self._start_ms
                self._tracks[ticker] = _Track(candles, granularity, anchor)
            return ticker, self._tracks[ticker]

    @staticmethod
    def _price_at(track: _Track, at_ms: int) -> tuple[float, int] | None:
        """(price, open time of the bar) at history time ``at_ms``; ``None`` before the first bar."""
        c = track.candles
        idx = int(np.searchsorted(c.ts, at_ms, side="right")) - 1
        if idx < 0:
            return None
        bar_open = int(c.ts[idx])
        if at_ms >= bar_open + track.granularity_ms:
            return float(c.close[idx]), bar_open
        frac = (at_ms - bar_open) / track.granularity_ms
        price = bar_path_price(float(c.open[idx]), float(c.high[idx]), float(c.low[idx]), float(c.close[idx]), frac)
        return price, bar_open

    async def prices(self, symbols: Sequence[str]) -> dict[str, PriceQuote]:
        now = self._clock.now()
        out: dict[str, PriceQuote] = {}
        for symbol in symbols:
            ticker, track = await self._track(symbol)
            position, finished = self._position(track)
            at = self._price_at(track, min(position, track.end_ms - 1))
            if at is None:
                continue
            price, bar_open = at
            day_ago = self._price_at(track, position - DAY_MS)
            change = None if day_ago is None else (price / day_ago[0] - 1.0) * 100.0
            out[ticker] = PriceQuote(ticker, price, change, now, finished, SOURCE, replayed_bar_time=from_ms(bar_open))
        return out

    async def candles(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> CandleSeries:
        """Completed candles (as of the replay position) with open time in ``[start, end)`` of *history* time."""
        ticker, track = await self._track(symbol)
        series = self._played(track, timeframe)
        return self._series(ticker, timeframe, track, between(series, to_ms(start), to_ms(end)))

    async def history(self, symbol: str, timeframe: str, limit: int) -> CandleSeries:
        """The last ``limit`` completed candles up to the replay position (for charts in replay mode)."""
        if limit < 1:
            raise Invalid("limit must be positive")
        ticker, track = await self._track(symbol)
        series = self._played(track, timeframe)
        return self._series(ticker, timeframe, track, series.slice(max(0, len(series) - limit), len(series)))

    def _played(self, track: _Track, timeframe: str) -> Candles:
        if timeframe not in TIMEFRAME_MS:
            raise Invalid(f"unsupported timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_MS)}")
        try:
            series = resample(track.candles, track.granularity_ms, timeframe, require_complete=True)
        except ValueError as exc:
            raise Invalid(f"stored history cannot make {timeframe} candles: {exc}") from None
        position, _ = self._position(track)
        return completed(series, timeframe_ms(timeframe), position)

    def _series(self, ticker: str, timeframe: str, track: _Track, candles: Candles) -> CandleSeries:
        position, finished = self._position(track)
        return CandleSeries(
            symbol=ticker,
            timeframe=timeframe,
            granularity_ms=track.granularity_ms,
            source=SOURCE,
            candles=candles,
            kind="stored",
            as_of=from_ms(position),
            stale=finished,
        )

    async def search(self, q: str) -> list[SymbolInfo]:
        needle = q.strip().lower()
        if not needle:
            raise Invalid("search text must not be empty")
        return [
            s
            for s in sorted(self._symbols.values(), key=lambda s: s.symbol)
            if needle in s.symbol.lower() or needle in s.name.lower() or needle in s.coin_id
        ]

    def status(self) -> ProviderStatus:
        detail = {"speed": f"{self.speed:g}", "loop": str(self.loop).lower()}
        finished_any = False
        for ticker, track in self._tracks.items():
            position, finished = self._position(track)
            detail[f"position.{ticker}"] = from_ms(position).isoformat()
            finished_any = finished_any or finished
        return ProviderStatus(
            source=SOURCE,
            last_success=self._clock.now(),
            data_age_s=0.0,
            stale=finished_any,
            budget_used=0,
            budget_limit=0,
            budget_period_s=0.0,
            breaker_state="none",
            detail=detail,
        )
