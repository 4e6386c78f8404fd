"""Market use cases behind /api/market, the CLI import and the start-up load. Services never commit: the request,
CLI or task boundary owns the transaction.

Candle reads (:func:`query_candles`) pick one stored series per request and say which (``source``) and how fine
its data is (``granularity``). Source preference when the caller names none: a series that overlaps the requested
range, then CoinGecko, then the bundled exchange files, then user imports (``csv``/``csv:*``, shared by all users,
so they are shown only when asked for or when nothing else exists); then the coarsest stored timeframe that
divides the one asked for (the least resampling). A coarser timeframe is aggregated on the fly from finer stored
candles (complete buckets only); a finer one is refused — never a series labelled finer than its data.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.core.audit import AuditContext, record_audit
from aaiti.core.clock import Clock
from aaiti.core.db.session import Database, UnitOfWork
from aaiti.core.errors import Invalid, Unavailable
from aaiti.core.tasks.models import Job
from aaiti.core.tasks.registry import JobKind, register
from aaiti.data import bundled_datasets, load_bundled
from aaiti.market import repository as repo
from aaiti.market.csv_import import CsvImportResult, parse_candles_csv
from aaiti.market.feed import PriceFeed, SourceSelector
from aaiti.market.provider import CandleSeries, PriceQuote
from aaiti.market.resample import format_ms, resample
from aaiti.market.symbols import DEFAULT_SYMBOLS, normalize_symbol
from aaiti.market.tasks import BackfillParams
from aaiti.market.validation import to_ms
from aaiti.trading.candles import TIMEFRAME_MS, Candles

log = structlog.get_logger(__name__)

BACKFILL_KIND: Final = "market.backfill"
MAX_CANDLE_LIMIT: Final = 5000
MAX_PRICE_SYMBOLS: Final = 50
#: Nothing tradable predates 2009; a range outside [2009, now + 1 day] is a mistake, not a query.
EARLIEST: Final = datetime(2009, 1, 1, tzinfo=UTC)
IMPORT_SOURCE_RE: Final = re.compile(r"^csv(:[a-z0-9][a-z0-9_.-]{0,30})?$")


def _source_rank(source: str) -> int:
    if source == "coingecko":
        return 0
    if source.startswith("bundled:"):
        return 1
    return 2


def check_timeframe(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise Invalid(f"unsupported timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_MS)}") from None


def check_range(start: datetime | None, end: datetime | None, now: datetime) -> None:
    """Aware datetimes, ``start < end``, inside [2009, now + 1 day]. Raises ``Invalid`` with the reason."""
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        if value.tzinfo is None:
            raise Invalid(f"{name} must carry a time zone (e.g. 2024-01-01T00:00:00Z)")
        if value < EARLIEST or value > now + timedelta(days=1):
            raise Invalid(f"{name} {value.isoformat()} is outside 2009-01-01 .. now")
    if start is not None and end is not None and end <= start:
        raise Invalid("end must be after start")


# -------------------------------------------------------------------------------------------------- prices


async def current_prices(
    sources: SourceSelector, feed: PriceFeed, symbols: Sequence[str]
) -> tuple[list[PriceQuote], list[str]]:
    """Quotes from the feed's cache (never an upstream price call per request). Unknown or malformed symbols raise
    ``Invalid``; known ones with no price yet are listed as unavailable and handed to the poller. Raises
    ``Unavailable`` when none of them has a price."""
    if not symbols:
        raise Invalid("give at least one symbol")
    if len(symbols) > MAX_PRICE_SYMBOLS:
        raise Invalid(f"at most {MAX_PRICE_SYMBOLS} symbols per request")
    tickers = list(dict.fromkeys([await sources.validate(s) for s in symbols]))
    feed.note_interest(tickers)
    quotes = feed.quotes(tickers)
    missing = [t for t in tickers if t not in quotes]
    if not quotes:
        reason = feed.last_error or "the feed has not received them yet"
        raise Unavailable(
            f"no price available for {', '.join(tickers)} from {sources.source}: {reason}",
            headers={"Retry-After": str(max(1, round(feed.interval_s)))},
        )
    return [quotes[t] for t in tickers if t in quotes], missing


# ------------------------------------------------------------------------------------------------- candles


@dataclass(frozen=True, slots=True)
class CandlePage:
    symbol: str
    timeframe: str
    source: str
    granularity_ms: int
    resampled: bool
    candles: Candles
    next_start: int | None
    prev_end: int | None


def _pick_series(
    series: list[repo.SeriesInfo], tf_ms: int, start: datetime | None, end: datetime | None
) -> repo.SeriesInfo | None:
    usable = [
        s
        for s in series
        if s.timeframe in TIMEFRAME_MS and tf_ms % TIMEFRAME_MS[s.timeframe] == 0 and s.granularity_ms <= tf_ms
    ]

    def overlaps(s: repo.SeriesInfo) -> bool:
        return (end is None or s.first < end) and (start is None or s.last >= start - timedelta(milliseconds=tf_ms))

    usable.sort(key=lambda s: (not overlaps(s), _source_rank(s.source), -TIMEFRAME_MS[s.timeframe], -s.count))
    return usable[0] if usable else None


async def query_candles(
    session: AsyncSession,
    *,
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    source: str | None,
    now: datetime,
) -> CandlePage:
    """Stored candles of ``symbol`` at ``timeframe`` with open time in ``[start, end)``, ascending.

    With ``start``: the first ``limit`` candles, and ``next_start`` when more may follow. Without: the last
    ``limit`` before ``end`` (default now), and ``prev_end`` when earlier ones exist."""
    ticker = normalize_symbol(symbol)
    tf_ms = check_timeframe(timeframe)
    check_range(start, end, now)
    if not 1 <= limit <= MAX_CANDLE_LIMIT:
        raise Invalid(f"limit must be 1..{MAX_CANDLE_LIMIT}")
    series = await repo.series_summary(session, ticker)
    if source is not None:
        series = [s for s in series if s.source == source]
    if not series:
        where = f" from source {source!r}" if source else ""
        raise Invalid(f"no stored candles for {ticker}{where}; import a CSV or run a backfill first")
    pick = _pick_series(series, tf_ms, start, end)
    if pick is None:
        finest = min(series, key=lambda s: max(TIMEFRAME_MS.get(s.timeframe, 0), s.granularity_ms))
        raise Invalid(
            f"{ticker} is stored at {finest.timeframe} at best (data granularity "
            f"{format_ms(finest.granularity_ms)}); {timeframe} candles would claim a finer granularity than the data"
        )
    stored_ms = TIMEFRAME_MS[pick.timeframe]
    factor = tf_ms // stored_ms
    start_ms = None if start is None else to_ms(start)
    end_ms = to_ms(end) if end is not None else to_ms(now)
    key = {"source": pick.source, "symbol": ticker, "timeframe": pick.timeframe}
    latest = start_ms is None
    if factor == 1:
        got = await repo.fetch_series(session, **key, start_ms=start_ms, end_ms=end_ms, limit=limit + 1, latest=latest)
        candles, granularity = got.candles, got.granularity_ms
        next_start = prev_end = None
        if len(candles) > limit:
            if latest:
                candles = candles.slice(1, len(candles))
            else:
                next_start = int(candles.ts[limit])
                candles = candles.slice(0, limit)
    else:
        # Whole buckets only: widen the stored range to bucket edges, then keep complete buckets in [start, end).
        lo = None if start_ms is None else start_ms // tf_ms * tf_ms
        hi = -(-end_ms // tf_ms) * tf_ms
        fetch = (limit + 1) * factor
        got = await repo.fetch_series(session, **key, start_ms=lo, end_ms=hi, limit=fetch, latest=latest)
        granularity = got.granularity_ms
        candles = resample(got.candles, stored_ms, timeframe, require_complete=True)
        keep = (candles.ts < end_ms) & (candles.ts >= (start_ms if start_ms is not None else -(2**62)))
        candles = _take(candles, np.flatnonzero(keep))
        next_start = prev_end = None
        truncated = len(got.candles) == fetch
        if latest:
            if len(candles) > limit:
                candles = candles.slice(len(candles) - limit, len(candles))
        else:
            if len(candles) > limit:
                next_start = int(candles.ts[limit])
                candles = candles.slice(0, limit)
            elif truncated:
                bucket = int(got.candles.ts[-1]) // tf_ms * tf_ms
                done = len(candles) > 0 and int(candles.ts[-1]) == bucket
                next_start = bucket + tf_ms if done else bucket
    if latest and len(candles):
        earlier = await repo.last_time_before(session, **key, before_ms=int(candles.ts[0]))
        prev_end = int(candles.ts[0]) if earlier is not None else None
    return CandlePage(
        symbol=ticker,
        timeframe=timeframe,
        source=pick.source,
        granularity_ms=granularity or stored_ms,
        resampled=factor > 1,
        candles=candles,
        next_start=next_start,
        prev_end=prev_end,
    )


def _take(candles: Candles, idx: Any) -> Candles:
    return Candles(
        candles.ts[idx], candles.open[idx], candles.high[idx], candles.low[idx], candles.close[idx], candles.volume[idx]
    )


# --------------------------------------------------------------------------------------------- CSV import


@dataclass(frozen=True, slots=True)
class ImportReport:
    symbol: str
    timeframe: str
    source: str
    result: CsvImportResult
    written: int


def check_import_source(source: str) -> str:
    if not IMPORT_SOURCE_RE.fullmatch(source):
        raise Invalid(
            "an imported source must be 'csv' or 'csv:<label>' (lower-case letters, digits, '_', '.', '-'); "
            "names such as 'coingecko' or 'bundled:*' are reserved for data the platform fetched itself"
        )
    return source


async def import_csv(
    uow: UnitOfWork,
    ctx: AuditContext,
    clock: Clock,
    *,
    text: str,
    symbol: str,
    timeframe: str,
    source: str = "csv",
    via: str = "api",
) -> ImportReport:
    """Validate and upsert candles from CSV text (see :mod:`aaiti.market.csv_import` for the rules), audited.
    Raises ``Invalid`` (with every rejected row reported in ``extra``) when no row is valid."""
    ticker = normalize_symbol(symbol)
    tf_ms = check_timeframe(timeframe)
    check_import_source(source)
    now = clock.now()
    try:
        result = await asyncio.to_thread(parse_candles_csv, text, timeframe=timeframe, max_ts_ms=to_ms(now))
    except ValueError as exc:
        raise Invalid(f"CSV refused: {exc}") from None
    rejected = [{"line": r.line, "reason": r.reason} for r in result.rejected]
    if result.accepted_count == 0:
        raise Invalid(
            f"no valid candle rows ({result.rejected_count} rejected)",
            extra={"rejected_count": result.rejected_count, "rejected": rejected[:100]},
        )
    written = await repo.upsert_candles(
        uow.session,
        source=source,
        symbol=ticker,
        timeframe=timeframe,
        candles=result.candles,
        granularity_ms=tf_ms,
        now=now,
        replace=True,
    )
    record_audit(
        uow.session,
        ctx,
        "market.import",
        resource_type="candles",
        resource_id=f"{source}/{ticker}/{timeframe}",
        details={
            "via": via,
            "accepted": result.accepted_count,
            "rejected": result.rejected_count,
            "first_ms": int(result.candles.ts[0]),
            "last_ms": int(result.candles.ts[-1]),
        },
    )
    return ImportReport(ticker, timeframe, source, result, written)


# ------------------------------------------------------------------------------------------------ backfill


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    params: dict[str, Any]
    series: CandleSeries
    store_timeframes: list[str]


async def fetch_backfill(
    sources: SourceSelector,
    *,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime | None,
    store_timeframes: Sequence[str] | None,
    now: datetime,
) -> BackfillPlan:
    """Fetch candles from CoinGecko in *this* (parent) process through the shared client, and build the job's
    params. Raises ``Unavailable`` without CoinGecko, ``Invalid`` for ranges/timeframes CoinGecko cannot serve."""
    provider = sources.coingecko
    if provider is None:
        raise Unavailable("backfill needs CoinGecko, but AAITI_MARKET__SOURCE=replay")
    tf_ms = check_timeframe(timeframe)
    check_range(start, end, now)
    end = min(end or now, now)
    if end <= start:
        raise Invalid("the range lies in the future")
    targets = list(dict.fromkeys(store_timeframes or [timeframe]))
    for tf in targets:
        target_ms = check_timeframe(tf)
        if target_ms < tf_ms or target_ms % tf_ms:
            raise Invalid(f"cannot store {tf} from {timeframe} candles: only whole multiples of {timeframe}")
    series = await provider.candles(symbol, timeframe, start, end)
    if len(series.candles) == 0:
        raise Invalid(f"CoinGecko returned no completed {timeframe} candles for {series.symbol} in that range")
    c = series.candles
    try:
        params = BackfillParams(
            symbol=series.symbol,
            timeframe=timeframe,
            granularity_ms=series.granularity_ms,
            kind="ohlc" if series.kind == "ohlc" else "price_points",
            store_timeframes=targets,
            t=c.ts.tolist(),
            o=c.open.tolist(),
            h=c.high.tolist(),
            low=c.low.tolist(),
            c=c.close.tolist(),
            v=[None if np.isnan(x) else float(x) for x in c.volume.tolist()],
        ).model_dump(mode="json")
    except ValidationError as exc:
        raise Invalid(f"CoinGecko data cannot be stored: {exc.errors()[0]['msg']}") from None
    return BackfillPlan(params, series, targets)


async def store_backfill(uow: UnitOfWork, job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """``JobKind.on_success``: upsert the worker's series in the parent's transaction; keep a summary on the job."""
    fetched_at = job.created_at  # the parent fetched the data just before it created the job
    stored: dict[str, int] = {}
    for item in result["series"]:
        candles = Candles.from_arrays(
            item["t"], item["o"], item["h"], item["low"], item["c"], [np.nan if v is None else v for v in item["v"]]
        )
        stored[item["timeframe"]] = await repo.upsert_candles(
            uow.session,
            source=result["source"],
            symbol=result["symbol"],
            timeframe=item["timeframe"],
            candles=candles,
            granularity_ms=int(result["granularity_ms"]),
            now=fetched_at,
            replace=True,
        )
    return {
        "symbol": result["symbol"],
        "source": result["source"],
        "granularity": format_ms(int(result["granularity_ms"])),
        "granularity_ms": int(result["granularity_ms"]),
        "kind": result["kind"],
        "rejected": int(result["rejected"]),
        "stored": stored,
    }


register(
    JobKind(
        BACKFILL_KIND,
        "aaiti.market.tasks:prepare_backfill",
        BackfillParams,
        user_submittable=False,
        on_success=store_backfill,
    )
)


# --------------------------------------------------------------------------------------------- bundled data


@dataclass(slots=True)
class BundledLoad:
    """Progress of the start-up load of the bundled history (shown in /api/market/status)."""

    state: str = "pending"
    rows_written: int = 0
    datasets: int = 0
    error: str | None = None
    loaded: list[str] = field(default_factory=list)


def bundled_source_name(exchange: str) -> str:
    return f"bundled:{exchange}"


async def load_bundled_history(
    db: Database,
    clock: Clock,
    progress: BundledLoad | None = None,
    *,
    batch_rows: int = repo.BATCH_ROWS,
    pause: Callable[[], Any] | None = None,
) -> BundledLoad:
    """Store every bundled dataset once, as ``source="bundled:<exchange>"``. Idempotent: a dataset whose rows are
    all present is skipped, and inserts never overwrite (``ON CONFLICT DO NOTHING``). Parsing runs in a thread and
    each batch is its own short transaction, so the event loop and other writers wait milliseconds at most."""
    progress = progress or BundledLoad()
    progress.state = "loading"
    for dataset in bundled_datasets():
        source = bundled_source_name(dataset.exchange)
        tf_ms = TIMEFRAME_MS[dataset.timeframe]
        candles = await asyncio.to_thread(load_bundled, dataset.name)
        async with db.read() as session:
            present = await repo.count_series(session, source, dataset.symbol, dataset.timeframe)
        progress.datasets += 1
        if present >= len(candles):
            continue
        rows = await asyncio.to_thread(
            repo.candle_rows, source, dataset.symbol, dataset.timeframe, candles, tf_ms, clock.now()
        )
        for i in range(0, len(rows), batch_rows):
            async with db.unit_of_work() as uow:
                progress.rows_written += await repo.upsert_rows(uow.session, rows[i : i + batch_rows], replace=False)
                await uow.commit()
            await (pause() if pause is not None else asyncio.sleep(0))
        progress.loaded.append(dataset.name)
        log.info("bundled_history_loaded", dataset=dataset.name, source=source, rows=len(rows))
    progress.state = "done"
    return progress


# ------------------------------------------------------------------------------------------------- symbols


@dataclass(frozen=True, slots=True)
class SymbolRow:
    symbol: str
    name: str
    coingecko_id: str
    live: bool
    history: list[repo.SeriesInfo]


async def list_symbols(session: AsyncSession, sources: SourceSelector) -> list[SymbolRow]:
    """Known tickers (the fixed table, learned ones, replay's and every stored series) with what is stored."""
    known = {s.symbol: s for s in DEFAULT_SYMBOLS}
    if sources.coingecko is not None:
        known.update({s.symbol: s for s in sources.coingecko.resolver.known()})
    stored: dict[str, list[repo.SeriesInfo]] = {}
    for series in await repo.series_summary(session):
        stored.setdefault(series.symbol, []).append(series)
    tickers = sorted(set(known) | set(stored) | set(sources.replay_symbols))
    out = []
    for ticker in tickers:
        info = known.get(ticker)
        out.append(
            SymbolRow(
                symbol=ticker,
                name=info.name if info else ticker,
                coingecko_id=info.coin_id if info else "",
                live=sources.can_price(ticker),
                history=stored.get(ticker, []),
            )
        )
    return out


__all__ = [
    "BACKFILL_KIND",
    "BackfillPlan",
    "BundledLoad",
    "CandlePage",
    "ImportReport",
    "SymbolRow",
    "check_import_source",
    "check_range",
    "check_timeframe",
    "current_prices",
    "fetch_backfill",
    "import_csv",
    "list_symbols",
    "load_bundled_history",
    "query_candles",
    "store_backfill",
]
