"""POST /api/indicators: any registered kernel indicator (``aaiti.trading.indicators.INDICATORS``) computed on a
symbol's candles. Read-only; any signed-in role.

Candles come from the stored series (the same choice and paging as ``GET /api/market/candles``: with ``start``
the first ``limit`` bars from it, without it the last ``limit`` bars before ``end``); when nothing is stored for
the symbol, from a bundled dataset of the package. Indicators are computed on exactly the bars returned, so the
first bars of each output are warm-up (``null``, never guessed): ask for an earlier ``start`` to see values from
your first bar of interest. Times are open times, epoch ms UTC.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any, Final

import numpy as np
from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from aaiti.auth.dependencies import CurrentUser
from aaiti.core.dependencies import Core, ReadSession
from aaiti.core.errors import Invalid
from aaiti.data import bundled_datasets, load_bundled
from aaiti.market import repository as repo
from aaiti.market import service
from aaiti.market.resample import between, resample
from aaiti.market.symbols import normalize_symbol
from aaiti.trading.candles import TIMEFRAME_MS, Candles
from aaiti.trading.indicators import INDICATORS, compute_indicator, validate_indicator_params

router = APIRouter(prefix="/api/indicators", tags=["indicators"])

#: Bars one request may compute on (the candle endpoint's page cap).
MAX_BARS: Final = service.MAX_CANDLE_LIMIT
#: Indicators one request may ask for.
MAX_INDICATORS: Final = 20


class IndicatorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=40, description="A registered indicator, e.g. rsi, macd, bbands")
    params: dict[str, Any] = Field(default_factory=dict, description="The indicator's parameters (defaults apply)")
    label: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Prefix of its series keys (default: the name); needed to ask for one indicator twice",
    )


class IndicatorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=32)
    timeframe: str = Field("1d", max_length=8, description="5m, 15m, 30m, 1h, 4h or 1d")
    start: AwareDatetime | None = Field(None, description="First open time (inclusive)")
    end: AwareDatetime | None = Field(None, description="Open times before this (default now)")
    limit: int = Field(500, ge=1, le=MAX_BARS, description="Bars to compute on")
    source: str | None = Field(None, max_length=40, description="A stored source, e.g. bundled:bitstamp")
    indicators: list[IndicatorRequest] = Field(min_length=1, max_length=MAX_INDICATORS)


class IndicatorInfo(BaseModel):
    key: str
    name: str
    params: dict[str, Any]
    outputs: list[str]
    lookback: int = Field(description="Leading warm-up bars (null) of the slowest output")


class IndicatorsOut(BaseModel):
    symbol: str
    timeframe: str
    source: str
    ts: list[int] = Field(description="Bar open times, epoch ms UTC")
    series: dict[str, list[float | None]] = Field(description='"<label or name>.<output>" -> one value per bar')
    indicators: list[IndicatorInfo]


def _check_indicators(items: list[IndicatorRequest]) -> list[tuple[str, IndicatorRequest, dict[str, Any], int]]:
    """Key, request, normalised params and lookback of each; ``Invalid`` with the reason."""
    out = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name not in INDICATORS:
            raise Invalid(
                f"indicators[{i}].name: unknown indicator {item.name!r}; known: {', '.join(sorted(INDICATORS))}"
            )
        try:
            params = validate_indicator_params(item.name, item.params)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            raise Invalid(f"indicators[{i}].params.{loc}: {first.get('msg', '')}"[:400]) from None
        except ValueError as exc:
            raise Invalid(f"indicators[{i}].params: {exc}"[:400]) from None
        key = item.label or item.name
        if key in seen:
            raise Invalid(f"indicators[{i}]: {key!r} is asked for twice; give each a distinct label")
        seen.add(key)
        spec = INDICATORS[item.name]
        out.append((key, item, params.model_dump(mode="json"), int(spec.lookback(params))))
    return out


def _bundled(ticker: str, timeframe: str, start_ms: int | None, end_ms: int, limit: int) -> tuple[str, Candles]:
    tf_ms = TIMEFRAME_MS[timeframe]
    usable = [d for d in bundled_datasets() if d.symbol == ticker and tf_ms % TIMEFRAME_MS[d.timeframe] == 0]
    if not usable:
        raise Invalid(f"no stored or bundled candles for {ticker} at {timeframe}; import a CSV or run a backfill")
    # The same timeframe first (no resampling), then the coarsest stored one, then by name.
    ds = min(usable, key=lambda d: (d.timeframe != timeframe, -TIMEFRAME_MS[d.timeframe], d.name))
    raw = load_bundled(ds.name)
    window = between(raw, start_ms if start_ms is not None else int(raw.ts[0]), end_ms)
    if ds.timeframe != timeframe:
        window = resample(window, TIMEFRAME_MS[ds.timeframe], timeframe, require_complete=True)
    n = len(window)
    window = window.slice(0, min(n, limit)) if start_ms is not None else window.slice(max(0, n - limit), n)
    return service.bundled_source_name(ds.exchange), window


def _series(values: np.ndarray[Any, Any]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@router.post("", response_model=IndicatorsOut)
async def indicators(body: IndicatorsIn, _user: CurrentUser, session: ReadSession, core: Core) -> IndicatorsOut:
    """Compute the indicators asked for (422 with the reason for an unknown name, bad parameters, a bad range or
    no data; at most ``MAX_INDICATORS`` indicators on ``MAX_BARS`` bars)."""
    checked = _check_indicators(body.indicators)
    ticker = normalize_symbol(body.symbol)
    service.check_timeframe(body.timeframe)
    now = core.clock.now()
    service.check_range(body.start, body.end, now)
    stored = await repo.series_summary(session, ticker)
    if body.source is not None:
        stored = [s for s in stored if s.source == body.source]
    if stored or body.source is not None:
        page = await service.query_candles(
            session,
            symbol=ticker,
            timeframe=body.timeframe,
            start=body.start,
            end=body.end,
            limit=body.limit,
            source=body.source,
            now=now,
        )
        source, candles = page.source, page.candles
    else:
        start_ms = None if body.start is None else _ms(body.start)
        end_ms = _ms(body.end if body.end is not None else now)
        source, candles = await asyncio.to_thread(_bundled, ticker, body.timeframe, start_ms, end_ms, body.limit)
    if len(candles) == 0:
        raise Invalid(f"no {body.timeframe} {ticker} candles in the range asked for")

    def compute() -> dict[str, list[float | None]]:
        series: dict[str, list[float | None]] = {}
        for key, item, params, _ in checked:
            try:
                outputs = compute_indicator(item.name, candles, params)
            except ValueError as exc:
                raise Invalid(f"{key}: {exc}"[:400]) from None
            for output, values in outputs.items():
                series[f"{key}.{output}"] = _series(values)
        return series

    series = await asyncio.to_thread(compute)
    return IndicatorsOut(
        symbol=ticker,
        timeframe=body.timeframe,
        source=source,
        ts=[int(t) for t in candles.ts.tolist()],
        series=series,
        indicators=[
            IndicatorInfo(
                key=key, name=item.name, params=params, outputs=list(INDICATORS[item.name].outputs), lookback=lookback
            )
            for key, item, params, lookback in checked
        ],
    )


__all__ = ["MAX_BARS", "MAX_INDICATORS", "IndicatorsIn", "IndicatorsOut", "router"]
