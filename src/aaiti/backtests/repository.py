"""Queries on ``backtests`` and ``backtest_trades``. Ownership is part of every query (``user_id = :me``), never a
check after loading. Functions take a session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.backtests.models import Backtest, BacktestTrade

#: Sortable columns of the list besides the metrics.
COLUMN_SORTS: dict[str, Any] = {
    "created_at": Backtest.created_at,
    "name": Backtest.name,
    "bars": Backtest.bars,
    "num_trades": Backtest.num_trades,
}
TRADE_BATCH = 5000


def metric_expression(name: str) -> ColumnElement[float]:
    """The stored value of metric ``name`` (JSON ``performance_metrics[name]["value"]``) as a float; NULL when
    the metric is undefined. Works on SQLite (``JSON_EXTRACT``) and PostgreSQL (``#>>``)."""
    expression: ColumnElement[float] = Backtest.performance_metrics[(name, "value")].as_float()
    return expression


async def get_owned(session: AsyncSession, owner_id: uuid.UUID, backtest_id: uuid.UUID) -> Backtest | None:
    result = await session.scalar(select(Backtest).where(Backtest.id == backtest_id, Backtest.user_id == owner_id))
    return result


async def get_many_owned(session: AsyncSession, owner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Backtest]:
    rows = await session.scalars(select(Backtest).where(Backtest.id.in_(list(ids)), Backtest.user_id == owner_id))
    return list(rows.all())


async def exists(session: AsyncSession, backtest_id: uuid.UUID) -> bool:
    return (await session.scalar(select(func.count()).where(Backtest.id == backtest_id))) == 1


async def list_owned(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    sort: str,
    order: Literal["asc", "desc"],
    kind: str | None = None,
    strategy: str | None = None,
) -> tuple[list[Backtest], int]:
    query = select(Backtest).where(Backtest.user_id == owner_id)
    if kind:
        query = query.where(Backtest.kind == kind)
    if strategy:
        query = query.where(Backtest.strategy == strategy)
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    key: Any = COLUMN_SORTS[sort] if sort in COLUMN_SORTS else metric_expression(sort)
    ordered = key.asc() if order == "asc" else key.desc()
    rows = await session.scalars(
        query.order_by(ordered.nulls_last(), Backtest.created_at.desc(), Backtest.id).limit(limit).offset(offset)
    )
    return list(rows.all()), total


async def insert_trades(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(rows), TRADE_BATCH):
        await session.execute(insert(BacktestTrade), list(rows[i : i + TRADE_BATCH]))


async def trade_page(
    session: AsyncSession, backtest_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[BacktestTrade], int]:
    total = int(await session.scalar(select(func.count()).where(BacktestTrade.backtest_id == backtest_id)) or 0)
    rows = await session.scalars(
        select(BacktestTrade)
        .where(BacktestTrade.backtest_id == backtest_id)
        .order_by(BacktestTrade.seq)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total


async def delete_owned(session: AsyncSession, row: Backtest) -> None:
    # Explicit, so deleting never depends on the connection's foreign-key pragma for the cascade.
    await session.execute(delete(BacktestTrade).where(BacktestTrade.backtest_id == row.id))
    await session.delete(row)
