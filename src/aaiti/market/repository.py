"""Stored candles (``StoredCandles`` in DESIGN §4): idempotent bulk upserts, range queries, per-series summaries.

Upserts use the dialect's own ``INSERT ... ON CONFLICT`` (SQLite and PostgreSQL), so re-running an import, a
backfill or the bundled load never duplicates a candle: ``replace=True`` lets the newer data win (backfills and
imports correct earlier rows), ``replace=False`` keeps what is there (the bundled load never overwrites).
Functions take a session and never commit: the caller's unit of work owns the transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import numpy as np
from sqlalchemy import Select, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.market.models import Candle
from aaiti.market.validation import from_ms, to_ms
from aaiti.trading.candles import Candles

#: Rows per ``executemany``: large enough to be fast, small enough that one batch holds the SQLite write lock
#: for only a few milliseconds.
BATCH_ROWS: Final = 2000
#: Core table, not the ORM entity: a Core ``executemany`` reports ``rowcount`` and skips ORM bookkeeping.
_TABLE = cast(Table, Candle.__table__)
_RowSelect = Select[datetime, float, float, float, float, float | None, int]
_VALUE_COLUMNS: Final = ("open", "high", "low", "close", "volume", "granularity_ms", "updated_at")


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One stored series: (source, symbol, timeframe) with its row count, first/last open time and the coarsest
    granularity of the data its rows were built from."""

    source: str
    symbol: str
    timeframe: str
    count: int
    first: datetime
    last: datetime
    granularity_ms: int


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """Rows read back: candles (``volume`` NaN where unknown) and the coarsest ``granularity_ms`` among them."""

    candles: Candles
    granularity_ms: int


def candle_rows(
    source: str, symbol: str, timeframe: str, candles: Candles, granularity_ms: int, now: datetime
) -> list[dict[str, Any]]:
    """Plain dicts for an ``executemany``; NaN volume becomes NULL (unknown, not zero)."""
    return [
        {
            "source": source,
            "symbol": symbol,
            "timeframe": timeframe,
            "open_time": from_ms(int(ts)),
            "open": float(o),
            "high": float(h),
            "low": float(low),
            "close": float(c),
            "volume": None if math.isnan(v) else float(v),
            "granularity_ms": granularity_ms,
            "updated_at": now,
        }
        for ts, o, h, low, c, v in zip(
            candles.ts.tolist(),
            candles.open.tolist(),
            candles.high.tolist(),
            candles.low.tolist(),
            candles.close.tolist(),
            candles.volume.tolist(),
            strict=True,
        )
    ]


def _insert(dialect: str, *, replace: bool) -> Any:
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(_TABLE)
    elif dialect == "sqlite":
        stmt = sqlite.insert(_TABLE)
    else:
        raise RuntimeError(f"candle upserts need SQLite or PostgreSQL, not {dialect}")
    keys = ["source", "symbol", "timeframe", "open_time"]
    if not replace:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: getattr(stmt.excluded, name) for name in _VALUE_COLUMNS}
    )


async def upsert_rows(session: AsyncSession, rows: Sequence[dict[str, Any]], *, replace: bool) -> int:
    """Insert ``rows`` (from :func:`candle_rows`) in batches; returns how many rows were written (inserted, or
    updated when ``replace``)."""
    if not rows:
        return 0
    stmt = _insert(session.get_bind().dialect.name, replace=replace)
    written = 0
    for i in range(0, len(rows), BATCH_ROWS):
        result = await session.execute(stmt, list(rows[i : i + BATCH_ROWS]))
        count = getattr(result, "rowcount", -1)
        written += count if isinstance(count, int) and count >= 0 else len(rows[i : i + BATCH_ROWS])
    return written


async def upsert_candles(
    session: AsyncSession,
    *,
    source: str,
    symbol: str,
    timeframe: str,
    candles: Candles,
    granularity_ms: int,
    now: datetime,
    replace: bool = True,
) -> int:
    rows = candle_rows(source, symbol, timeframe, candles, granularity_ms, now)
    return await upsert_rows(session, rows, replace=replace)


async def count_series(session: AsyncSession, source: str, symbol: str, timeframe: str) -> int:
    query = select(func.count()).where(Candle.source == source, Candle.symbol == symbol, Candle.timeframe == timeframe)
    return int(await session.scalar(query) or 0)


async def series_summary(session: AsyncSession, symbol: str | None = None) -> list[SeriesInfo]:
    """Every stored series (optionally of one symbol), ordered by symbol, timeframe, source."""
    query = select(
        Candle.source,
        Candle.symbol,
        Candle.timeframe,
        func.count(),
        func.min(Candle.open_time),
        func.max(Candle.open_time),
        func.max(Candle.granularity_ms),
    ).group_by(Candle.source, Candle.symbol, Candle.timeframe)
    if symbol is not None:
        query = query.where(Candle.symbol == symbol)
    result = await session.execute(query.order_by(Candle.symbol, Candle.timeframe, Candle.source))
    out: list[SeriesInfo] = []
    for source, sym, timeframe, count, first, last, granularity in result.all():
        # min()/max() bypass the column type on SQLite (they come back as text); normalise through the type.
        out.append(
            SeriesInfo(source, sym, timeframe, int(count), _as_datetime(first), _as_datetime(last), int(granularity))
        )
    return out


def _as_datetime(value: Any) -> datetime:
    from datetime import UTC

    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _range_query(source: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None) -> _RowSelect:
    query = select(
        Candle.open_time, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume, Candle.granularity_ms
    ).where(Candle.source == source, Candle.symbol == symbol, Candle.timeframe == timeframe)
    if start_ms is not None:
        query = query.where(Candle.open_time >= from_ms(start_ms))
    if end_ms is not None:
        query = query.where(Candle.open_time < from_ms(end_ms))
    return query


async def fetch_series(
    session: AsyncSession,
    *,
    source: str,
    symbol: str,
    timeframe: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
    latest: bool = False,
) -> StoredSeries:
    """Candles with open time in ``[start_ms, end_ms)``, ascending. With ``latest`` the *last* ``limit`` of
    them (still returned in ascending order); otherwise the first ``limit``."""
    query = _range_query(source, symbol, timeframe, start_ms, end_ms)
    query = query.order_by(Candle.open_time.desc() if latest else Candle.open_time.asc())
    if limit is not None:
        query = query.limit(limit)
    rows = list((await session.execute(query)).all())
    if latest:
        rows.reverse()
    return _to_series(rows)


def _to_series(rows: Sequence[Any]) -> StoredSeries:
    n = len(rows)
    ts = np.empty(n, dtype=np.int64)
    table = np.empty((n, 5), dtype=np.float64)
    granularity = 0
    for i, (open_time, o, h, low, c, v, g) in enumerate(rows):
        ts[i] = to_ms(open_time)
        table[i] = (o, h, low, c, math.nan if v is None else v)
        granularity = max(granularity, int(g))
    candles = Candles(
        ts, table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), table[:, 3].copy(), table[:, 4].copy()
    )
    return StoredSeries(candles, granularity)


async def first_time_after(
    session: AsyncSession, *, source: str, symbol: str, timeframe: str, after_ms: int
) -> int | None:
    """Open time (ms) of the first stored candle at or after ``after_ms``, or ``None``."""
    query = select(func.min(Candle.open_time)).where(
        Candle.source == source,
        Candle.symbol == symbol,
        Candle.timeframe == timeframe,
        Candle.open_time >= from_ms(after_ms),
    )
    value = await session.scalar(query)
    return None if value is None else to_ms(_as_datetime(value))


async def last_time_before(
    session: AsyncSession, *, source: str, symbol: str, timeframe: str, before_ms: int
) -> int | None:
    """Open time (ms) of the last stored candle before ``before_ms``, or ``None``."""
    query = select(func.max(Candle.open_time)).where(
        Candle.source == source,
        Candle.symbol == symbol,
        Candle.timeframe == timeframe,
        Candle.open_time < from_ms(before_ms),
    )
    value = await session.scalar(query)
    return None if value is None else to_ms(_as_datetime(value))
