"""/api/market: prices (the feed's cache), stored candles, symbols, search, status, CSV import, backfill jobs.

Reads need any signed-in role; import and backfill change shared data and need a trader or an administrator.
Prices never trigger an upstream call per request: the one poller fetches, requests read its cache.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from starlette.datastructures import UploadFile

from aaiti.auth.dependencies import CurrentUser, Trader
from aaiti.core.dependencies import Core, ReadSession, UoW, audit_context
from aaiti.core.errors import Invalid
from aaiti.core.tasks.schemas import JobOut
from aaiti.core.tasks.service import submit_job
from aaiti.market import service
from aaiti.market.dependencies import Market
from aaiti.market.feed import PriceFeed
from aaiti.market.provider import PriceQuote
from aaiti.market.resample import format_ms
from aaiti.market.schemas import (
    BackfillIn,
    BackfillOut,
    BundledOut,
    CandleOut,
    CandlesOut,
    FeedOut,
    ImportOut,
    PriceOut,
    PricesOut,
    RejectedRowOut,
    SearchHit,
    SearchOut,
    StatusOut,
    StoredSeriesOut,
    SymbolOut,
    SymbolsOut,
    Timeframe,
)
from aaiti.market.validation import from_ms

router = APIRouter(prefix="/api/market", tags=["market"])

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
IMPORT_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "CSV `timestamp_ms,open,high,low,close,volume` (open time in ms UTC), as the raw body or as "
        "the `file` field of a multipart form. The app's body cap applies (413 beyond).",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


def _price_out(quote: PriceQuote) -> PriceOut:
    return PriceOut(**PriceFeed.payload(quote))


@router.get("/prices", response_model=PricesOut, responses={503: {"description": "no price known yet"}})
async def prices(
    market: Market,
    _user: CurrentUser,
    symbols: Annotated[
        str | None, Query(max_length=600, description="comma-separated tickers, e.g. BTC,ETH (default: configured)")
    ] = None,
) -> PricesOut:
    wanted = [s for s in symbols.split(",") if s.strip()] if symbols is not None else list(market.settings.symbols)
    quotes, missing = await service.current_prices(market.sources, market.feed, wanted)
    return PricesOut(items=[_price_out(q) for q in quotes], unavailable=missing)


@router.get("/candles", response_model=CandlesOut)
async def candles(
    market: Market,
    _user: CurrentUser,
    session: ReadSession,
    symbol: Annotated[str, Query(min_length=1, max_length=32)],
    timeframe: Annotated[str, Query(max_length=8, description="5m, 15m, 30m, 1h, 4h or 1d")] = "1h",
    start: Annotated[datetime | None, Query(description="first open time, with time zone (forward paging)")] = None,
    end: Annotated[datetime | None, Query(description="open times before this, with time zone (default now)")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_CANDLE_LIMIT)] = 500,
    source: Annotated[str | None, Query(max_length=40, description="a stored source, e.g. bundled:bitstamp")] = None,
) -> CandlesOut:
    page = await service.query_candles(
        session,
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        limit=limit,
        source=source,
        now=market.clock.now(),
    )
    c = page.candles
    items = [
        CandleOut(t=t, o=o, h=h, l=low, c=close, v=None if math.isnan(v) else v)
        for t, o, h, low, close, v in zip(
            c.ts.tolist(),
            c.open.tolist(),
            c.high.tolist(),
            c.low.tolist(),
            c.close.tolist(),
            c.volume.tolist(),
            strict=True,
        )
    ]
    return CandlesOut(
        symbol=page.symbol,
        timeframe=page.timeframe,
        source=page.source,
        granularity=format_ms(page.granularity_ms),
        granularity_ms=page.granularity_ms,
        resampled=page.resampled,
        items=items,
        next_start=page.next_start,
        prev_end=page.prev_end,
    )


@router.get("/symbols", response_model=SymbolsOut)
async def symbols(market: Market, _user: CurrentUser, session: ReadSession) -> SymbolsOut:
    rows = await service.list_symbols(session, market.sources)
    return SymbolsOut(
        items=[
            SymbolOut(
                symbol=r.symbol,
                name=r.name,
                coingecko_id=r.coingecko_id,
                live=r.live,
                history=[
                    StoredSeriesOut(
                        source=h.source,
                        timeframe=h.timeframe,
                        count=h.count,
                        first=h.first,
                        last=h.last,
                        granularity=format_ms(h.granularity_ms),
                    )
                    for h in r.history
                ],
            )
            for r in rows
        ]
    )


@router.get("/search", response_model=SearchOut, responses={429: {"description": "search budget spent"}})
async def search(
    market: Market, _user: CurrentUser, q: Annotated[str, Query(min_length=1, max_length=50)]
) -> SearchOut:
    hits = await market.sources.active.search(q)
    return SearchOut(
        items=[
            SearchHit(symbol=h.symbol, name=h.name, coingecko_id=h.coin_id, market_cap_rank=h.market_cap_rank)
            for h in hits[:25]
        ],
        source=market.sources.source,
    )


@router.get("/status", response_model=StatusOut)
async def market_status(market: Market, _user: CurrentUser) -> StatusOut:
    st = market.sources.status()
    feed = market.feed
    fresh = feed.fresh()
    feed_status = feed.status()
    coingecko = None
    cg = market.sources.coingecko
    if cg is not None and market.sources.active is not cg:
        cg_status = cg.status()
        coingecko = {
            "breaker_state": cg_status.breaker_state,
            "last_error": cg_status.last_error,
            "last_success": cg_status.last_success.isoformat() if cg_status.last_success else None,
            "budget_used": cg_status.budget_used,
            "budget_limit": cg_status.budget_limit,
        }
    has_budget = st.budget_limit > 0
    age = feed.data_age_s()
    return StatusOut(
        source=st.source,
        mode=market.settings.source,
        last_success=st.last_success,
        data_age_s=age if age is not None else st.data_age_s,
        stale=not fresh,
        breaker_state=st.breaker_state,
        budget_used=st.budget_used if has_budget else None,
        budget_limit=st.budget_limit if has_budget else None,
        budget_period_s=st.budget_period_s if has_budget else None,
        paused_until=st.paused_until,
        last_error=st.last_error or feed.last_error,
        symbol_age_s=dict(st.symbol_age_s),
        detail=dict(st.detail),
        feed=FeedOut(
            interval_s=feed_status.interval_s,
            symbols=feed_status.symbols,
            last_poll=feed_status.last_poll,
            last_error=feed_status.last_error,
            polls=feed_status.polls,
        ),
        bundled=BundledOut(
            state=market.bundled.state,
            rows_written=market.bundled.rows_written,
            datasets=market.bundled.datasets,
            error=market.bundled.error,
        ),
        coingecko=coingecko,
    )


async def _csv_text(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in CSV_TYPES:
        raw = await request.body()
    elif content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("the multipart form needs a 'file' field with the CSV")
        raw = await upload.read()
        await upload.close()
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the CSV as text/csv or as multipart/form-data 'file'"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the CSV is not UTF-8 text") from None


@router.post(
    "/import",
    response_model=ImportOut,
    openapi_extra=IMPORT_BODY_DOC,
    responses={413: {"description": "body over the cap"}, 415: {"description": "not CSV"}},
)
async def import_candles(
    request: Request,
    principal: Trader,
    uow: UoW,
    core: Core,
    symbol: Annotated[str, Query(min_length=1, max_length=32)],
    timeframe: Annotated[Timeframe, Query()],
    source: Annotated[str, Query(max_length=40, description="'csv' or 'csv:<label>'")] = "csv",
) -> ImportOut:
    service.check_import_source(source)
    text = await _csv_text(request)
    await core.limiter.hit(f"market-import:{principal.id}", limit=30, window_s=60, what="imports")
    report = await service.import_csv(
        uow, audit_context(request), core.clock, text=text, symbol=symbol, timeframe=timeframe, source=source
    )
    await uow.commit()
    c = report.result.candles
    return ImportOut(
        symbol=report.symbol,
        timeframe=report.timeframe,
        source=report.source,
        accepted=report.result.accepted_count,
        written=report.written,
        rejected_count=report.result.rejected_count,
        rejected=[RejectedRowOut(line=r.line, reason=r.reason) for r in report.result.rejected],
        first=from_ms(int(c.ts[0])) if len(c) else None,
        last=from_ms(int(c.ts[-1])) if len(c) else None,
    )


@router.post(
    "/backfill",
    response_model=BackfillOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={429: {"description": "backfill budget spent"}, 503: {"description": "CoinGecko unavailable"}},
)
async def backfill(body: BackfillIn, request: Request, principal: Trader, uow: UoW, core: Core, market: Market) -> Any:
    budget = max(1, market.settings.calls_per_minute // 5)
    await core.limiter.hit("market-backfill", limit=budget, window_s=60, what="backfills (shared CoinGecko budget)")
    plan = await service.fetch_backfill(
        market.sources,
        symbol=body.symbol,
        timeframe=body.timeframe,
        start=body.start,
        end=body.end,
        store_timeframes=body.store_timeframes,
        now=core.clock.now(),
    )
    job = await submit_job(
        uow,
        core.runner,
        core.clock,
        audit_context(request),
        principal,
        service.BACKFILL_KIND,
        plan.params,
        max_active=core.settings.jobs.max_concurrent_per_user,
        user_facing=False,
    )
    await uow.commit()
    return BackfillOut(
        job=JobOut.model_validate(job),
        symbol=plan.series.symbol,
        timeframe=body.timeframe,
        granularity=format_ms(plan.series.granularity_ms),
        granularity_ms=plan.series.granularity_ms,
        kind=plan.series.kind,
        candles=len(plan.series.candles),
        store_timeframes=plan.store_timeframes,
    )
