"""The market-data contract (DESIGN §4) and the values it returns.

Every implementation (CoinGecko, replay, stored candles) answers with these types, so the REST layer, the live feed
and the bots never care where a price came from; ``source`` says it.

Time rules: every ``datetime`` here is timezone-aware UTC. Candle times inside :class:`CandleSeries` follow
:class:`aaiti.trading.candles.Candles` (open time, epoch milliseconds, UTC).

The one rule all implementations keep: **a price is never invented**. A provider serves data it received (or, on
failure, the last good value with ``stale=True`` and its original ``as_of``), or raises
:class:`aaiti.core.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from aaiti.trading.candles import Candles

BreakerState = Literal["closed", "open", "half_open", "none"]
CandleKind = Literal["ohlc", "price_points", "stored"]


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """One price of ``symbol`` (a ticker such as ``"BTC"``) in the provider's quote currency.

    ``as_of`` is when the upstream says the price was observed (CoinGecko's ``last_updated_at``), or when it was
    fetched if the upstream gives no time. ``stale`` is true when the value could not be refreshed on the last try or
    is older than the provider's freshness limit; bots must not trade on stale prices.
    ``replayed_bar_time`` is set only by replay: the open time of the historical bar this tick walks through.
    """

    symbol: str
    price: float
    change_24h_pct: float | None
    as_of: datetime
    stale: bool
    source: str
    replayed_bar_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """Candles of ``symbol`` at ``timeframe`` and how they were obtained.

    ``granularity_ms`` is the spacing of the data the source actually delivered (e.g. 300 000 for CoinGecko's
    5-minute points) before any resampling to ``timeframe``; it is never finer than what was received.
    ``kind`` tells how trustworthy high/low are: ``"ohlc"`` = real candles; ``"price_points"`` = built from price
    snapshots (high/low are the extremes of the samples, volume unknown). Unknown volume is ``NaN``, never 0.
    Only completed candles are included (the bucket containing ``as_of`` is left out).
    """

    symbol: str
    timeframe: str
    granularity_ms: int
    source: str
    candles: Candles
    kind: CandleKind = "ohlc"
    as_of: datetime | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """A tradable asset: ticker (upper case), the upstream id (CoinGecko coin id), display name, rank if known."""

    symbol: str
    coin_id: str
    name: str
    market_cap_rank: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """Health of a provider, as shown in ``/api/market/status`` and ``/api/health/ready``.

    ``data_age_s`` is the age of the oldest price the provider currently holds (``None`` before the first one);
    ``symbol_age_s`` the age per ticker. ``budget_used`` counts upstream calls in the last ``budget_period_s``.
    """

    source: str
    last_success: datetime | None
    data_age_s: float | None
    stale: bool
    budget_used: int
    budget_limit: int
    budget_period_s: float
    breaker_state: BreakerState
    last_error: str | None = None
    paused_until: datetime | None = None
    symbol_age_s: Mapping[str, float] = field(default_factory=dict)
    detail: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class MarketDataProvider(Protocol):
    """A source of live prices, historical candles and symbol search (DESIGN §4)."""

    @property
    def source(self) -> str:
        """Short stable name of the source (``"coingecko"``, ``"replay"``), reported in every payload."""
        ...

    async def prices(self, symbols: Sequence[str]) -> dict[str, PriceQuote]:
        """Latest quotes keyed by normalised ticker.

        Raises ``Invalid`` for a malformed or unknown symbol and ``Unavailable`` when none of the requested symbols
        can be served. A symbol that is known but has no value to serve (never fetched and the upstream failed) is
        left out of the result rather than invented.
        """
        ...

    async def candles(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> CandleSeries:
        """Completed candles with open time in ``[start, end)``.

        Raises ``Invalid`` when the source cannot deliver ``timeframe`` for that range (never a coarser series
        labelled as finer) and ``Unavailable`` when the source is down and nothing is cached.
        """
        ...

    async def search(self, q: str) -> list[SymbolInfo]:
        """Assets matching a free-text query, best match first."""
        ...

    def status(self) -> ProviderStatus:
        """Freshness, budget and breaker state; never does I/O."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider must not be used afterwards."""
        ...
