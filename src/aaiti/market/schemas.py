"""Bodies of /api/market (shapes fixed in docs/api-contract-draft.md; the SPA reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from aaiti.core.tasks.schemas import JobOut

Timeframe = Literal["5m", "15m", "30m", "1h", "4h", "1d"]


class PriceOut(BaseModel):
    symbol: str
    price: float
    change_24h_pct: float | None
    as_of: datetime = Field(description="when the upstream observed the price (UTC)")
    stale: bool = Field(description="true when the value could not be refreshed recently; do not trade on it")
    source: str


class PricesOut(BaseModel):
    items: list[PriceOut]
    unavailable: list[str] = Field(
        default_factory=list, description="requested symbols with no price yet (the feed fetches them shortly)"
    )


class CandleOut(BaseModel):
    t: int = Field(description="open time, epoch milliseconds UTC")
    o: float
    h: float
    l: float  # noqa: E741  (the contract's short names)
    c: float
    v: float | None = Field(description="volume in base units; null when the source has none")


class CandlesOut(BaseModel):
    symbol: str
    timeframe: str
    source: str
    granularity: str = Field(description="spacing of the data these candles were built from, e.g. '1h'")
    granularity_ms: int
    resampled: bool = Field(description="true when aggregated on the fly from finer stored candles")
    items: list[CandleOut]
    next_start: int | None = Field(None, description="pass as `start` for the next page (forward paging)")
    prev_end: int | None = Field(None, description="pass as `end` for the previous page (latest-first paging)")


class StoredSeriesOut(BaseModel):
    source: str
    timeframe: str
    count: int
    first: datetime
    last: datetime
    granularity: str


class SymbolOut(BaseModel):
    symbol: str
    name: str
    coingecko_id: str
    live: bool = Field(description="the active source can price it now")
    history: list[StoredSeriesOut] = Field(default_factory=list)


class SymbolsOut(BaseModel):
    items: list[SymbolOut]


class SearchHit(BaseModel):
    symbol: str
    name: str
    coingecko_id: str
    market_cap_rank: int | None


class SearchOut(BaseModel):
    items: list[SearchHit]
    source: str


class FeedOut(BaseModel):
    interval_s: float
    symbols: list[str]
    last_poll: datetime | None
    last_error: str | None
    polls: int


class BundledOut(BaseModel):
    state: Literal["disabled", "pending", "loading", "done", "failed"]
    rows_written: int
    datasets: int
    error: str | None = None


class StatusOut(BaseModel):
    source: str
    mode: Literal["coingecko", "replay", "auto"]
    last_success: datetime | None
    data_age_s: float | None
    stale: bool
    breaker_state: str
    budget_used: int | None
    budget_limit: int | None
    budget_period_s: float | None
    paused_until: datetime | None
    last_error: str | None
    symbol_age_s: dict[str, float]
    detail: dict[str, str]
    feed: FeedOut
    bundled: BundledOut
    coingecko: dict[str, str | int | float | None] | None = Field(
        None, description="CoinGecko's own state while auto mode serves replay (breaker, last error)"
    )


class RejectedRowOut(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    symbol: str
    timeframe: str
    source: str
    accepted: int
    written: int
    rejected_count: int
    rejected: list[RejectedRowOut]
    first: datetime | None
    last: datetime | None


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32)
    timeframe: Timeframe = "1h"
    start: AwareDatetime = Field(description="first open time wanted (timezone required)")
    end: AwareDatetime | None = Field(None, description="end of the range, exclusive (default: now)")
    store_timeframes: list[Timeframe] | None = Field(
        None, max_length=6, description="timeframes to store (default: just `timeframe`); never finer than the data"
    )


class BackfillOut(BaseModel):
    job: JobOut
    symbol: str
    timeframe: str
    granularity: str
    granularity_ms: int
    kind: str
    candles: int
    store_timeframes: list[str]
