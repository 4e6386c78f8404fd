"""The worker-process half of a CoinGecko backfill (job kind ``market.backfill``).

Division of labour (see docs/market.md): the *parent* fetches from CoinGecko through the application's one
shared client (one rate-limit budget, one breaker, one Retry-After pause, and the API key never leaves the
parent or lands in the jobs table), then submits the job with the candles it received. This function runs in a
worker process: it re-validates every candle, resamples to the coarser timeframes asked for and returns the
series; ``JobKind.on_success`` stores them in the parent's transaction. Worker code imports neither the database
nor the real-time layer.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aaiti.market.resample import check_resample, format_ms, resample
from aaiti.trading.candles import TIMEFRAME_MS, Candles

MAX_BACKFILL_ROWS = 20_000
Timeframe = Literal["5m", "15m", "30m", "1h", "4h", "1d"]


class _Ctx(Protocol):
    def report(self, fraction: float, message: str = "", *, force: bool = False) -> None: ...

    def check_cancelled(self) -> None: ...


class BackfillParams(BaseModel):
    """What the parent received from CoinGecko for one symbol, at ``timeframe`` built from data of spacing
    ``granularity_ms``, plus the coarser ``store_timeframes`` to derive. Times are candle open times, epoch ms UTC;
    ``v`` is ``None`` where the source has no volume."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=r"^[A-Z0-9]{1,15}$")
    source: Literal["coingecko"] = "coingecko"
    timeframe: Timeframe
    granularity_ms: int = Field(gt=0)
    kind: Literal["ohlc", "price_points"]
    store_timeframes: list[Timeframe] = Field(min_length=1, max_length=len(TIMEFRAME_MS))
    t: list[int] = Field(max_length=MAX_BACKFILL_ROWS)
    o: list[float] = Field(max_length=MAX_BACKFILL_ROWS)
    h: list[float] = Field(max_length=MAX_BACKFILL_ROWS)
    low: list[float] = Field(max_length=MAX_BACKFILL_ROWS)
    c: list[float] = Field(max_length=MAX_BACKFILL_ROWS)
    v: list[float | None] = Field(max_length=MAX_BACKFILL_ROWS)

    @model_validator(mode="after")
    def _consistent(self) -> BackfillParams:
        n = len(self.t)
        if any(len(col) != n for col in (self.o, self.h, self.low, self.c, self.v)):
            raise ValueError("candle columns differ in length")
        base = TIMEFRAME_MS[self.timeframe]
        if self.granularity_ms > base:
            raise ValueError(f"data of {format_ms(self.granularity_ms)} cannot make {self.timeframe} candles")
        for tf in self.store_timeframes:
            check_resample(base, TIMEFRAME_MS[tf])
        return self


def _valid_rows(p: BackfillParams) -> tuple[Candles, int]:
    """Keep rows that are aligned, strictly increasing, finite, positive and OHLC-consistent; count the rest."""
    step = TIMEFRAME_MS[p.timeframe]
    keep: list[int] = []
    last: int | None = None
    for i, ts in enumerate(p.t):
        o, h, low, c = p.o[i], p.h[i], p.low[i], p.c[i]
        v = p.v[i]
        prices_ok = all(math.isfinite(x) and x > 0 for x in (o, h, low, c))
        ok = (
            prices_ok
            and ts % step == 0
            and (last is None or ts > last)
            and low <= min(o, c)
            and h >= max(o, c)
            and (v is None or (math.isfinite(v) and v >= 0))
        )
        if ok:
            keep.append(i)
            last = ts
    idx = np.asarray(keep, dtype=np.int64)
    volume = np.asarray([math.nan if v is None else v for v in p.v], dtype=np.float64)
    candles = Candles(
        np.asarray(p.t, dtype=np.int64)[idx],
        np.asarray(p.o, dtype=np.float64)[idx],
        np.asarray(p.h, dtype=np.float64)[idx],
        np.asarray(p.low, dtype=np.float64)[idx],
        np.asarray(p.c, dtype=np.float64)[idx],
        volume[idx],
    )
    return candles, len(p.t) - len(keep)


def series_dict(timeframe: str, candles: Candles) -> dict[str, Any]:
    return {
        "timeframe": timeframe,
        "t": candles.ts.tolist(),
        "o": candles.open.tolist(),
        "h": candles.high.tolist(),
        "low": candles.low.tolist(),
        "c": candles.close.tolist(),
        "v": [None if math.isnan(x) else x for x in candles.volume.tolist()],
    }


def prepare_backfill(params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
    """Job target: validate and resample; returns ``{symbol, source, granularity_ms, kind, rejected, series}``."""
    p = BackfillParams.model_validate(params)
    ctx.check_cancelled()
    candles, rejected = _valid_rows(p)
    base = TIMEFRAME_MS[p.timeframe]
    series = []
    for i, tf in enumerate(dict.fromkeys(p.store_timeframes)):
        ctx.check_cancelled()
        out = resample(candles, base, tf, require_complete=True)
        series.append(series_dict(tf, out))
        ctx.report((i + 1) / len(p.store_timeframes), f"resampled to {tf}")
    return {
        "symbol": p.symbol,
        "source": p.source,
        "granularity_ms": p.granularity_ms,
        "kind": p.kind,
        "rejected": rejected,
        "series": series,
    }
