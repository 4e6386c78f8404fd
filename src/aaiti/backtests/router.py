"""/api/backtests: the strategy catalogue, runs (validated, then a job), results (owner only), compare, delete.

A result exists only once its job has succeeded; until then the job (``/api/jobs/{id}``, ``job_progress``
events) is what to watch, and ``backtest_completed`` is sent to ``user:{owner}`` and ``job:{id}`` when the
result has been stored.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status

from aaiti.auth.dependencies import CurrentUser, Trader
from aaiti.backtests import service
from aaiti.backtests.models import Backtest
from aaiti.backtests.schemas import (
    BacktestDetail,
    BacktestIn,
    BacktestPage,
    BacktestSubmitted,
    BacktestSummary,
    Catalog,
    CompareItem,
    CompareOut,
    Links,
    MetricOut,
    RunPage,
    RunRow,
    Series,
    TradeOut,
    TradePage,
)
from aaiti.core.dependencies import MAX_PAGE, Core, Paging, ReadSession, UoW, audit_context
from aaiti.core.errors import Invalid

router = APIRouter(prefix="/api/backtests", tags=["backtests"])
Order = Annotated[Literal["asc", "desc"], Query(description="Sort direction")]
TradesLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Trades per page")]
TradesOffset = Annotated[int, Query(ge=0, le=10_000_000)]
COMPARE_POINTS = 500


def _metrics(raw: dict[str, Any] | None) -> dict[str, MetricOut]:
    return {k: MetricOut.model_validate(v) for k, v in (raw or {}).items()}


def _series(raw: dict[str, Any] | None) -> Series | None:
    return None if raw is None else Series.model_validate(raw)


def _thin(raw: dict[str, Any], points: int) -> Series:
    """Every k-th point of an already chart-sized series (compare shows several curves at once)."""
    ts, values = raw["ts"], raw["values"]
    step = max(1, -(-len(ts) // points))
    keep = list(range(0, len(ts), step))
    if keep and keep[-1] != len(ts) - 1:
        keep.append(len(ts) - 1)
    return Series(ts=[ts[i] for i in keep], values=[values[i] for i in keep])


def _plain(value: Decimal) -> Decimal:
    """The same text on both databases (PostgreSQL's NUMERIC(38, 18) pads with zeros, SQLite keeps the text)."""
    return Decimal(format(value.normalize(), "f"))


def _summary_fields(row: Backtest) -> dict[str, Any]:
    metrics = _metrics(row.performance_metrics)
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "strategy": row.strategy,
        "strategy_params": row.strategy_params,
        "symbols": row.symbols,
        "timeframe": row.timeframe,
        "range_start": row.range_start,
        "range_end": row.range_end,
        "engine": row.engine,
        "bars": row.bars,
        "num_trades": row.num_trades,
        "initial_capital": _plain(row.initial_capital),
        "final_capital": _plain(row.final_capital),
        "total_return": row.total_return,
        "headline": {k: metrics[k] for k in service.HEADLINE if k in metrics},
        "fingerprint": str(row.fingerprint.get("combined", "")),
        "job_id": row.job_id,
        "created_at": row.created_at,
    }


@router.get("/strategies", response_model=Catalog)
async def strategies(_: CurrentUser) -> dict[str, Any]:
    """Every strategy with the JSON Schema of its parameters, the execution config's schema, the run kinds'
    settings schemas, the timeframes, the sortable metrics and the limits."""
    return service.catalog()


@router.post("", response_model=BacktestSubmitted, status_code=status.HTTP_202_ACCEPTED)
async def run(
    body: BacktestIn, request: Request, principal: Trader, session: ReadSession, uow: UoW, core: Core
) -> BacktestSubmitted:
    """Validate the run (422 with the reason; nothing stored) and queue it as a job (202). The result will be
    at ``links.backtest`` once the job at ``links.job`` has succeeded."""
    max_active = core.settings.jobs.max_concurrent_per_user
    await service.check_capacity(session, principal, max_active)
    ml_runtime = getattr(request.app.state, "ml", None)
    root: Path | None = ml_runtime.root if ml_runtime is not None else None
    plan = await service.plan_run(session, body, core.clock.now(), principal, root)
    await session.close()
    job, backtest_id = await service.submit(
        uow, core.runner, core.clock, audit_context(request), principal, plan, max_active=max_active
    )
    await uow.commit()
    return BacktestSubmitted(
        job_id=job.id,
        backtest_id=backtest_id,
        status=job.status,
        bars=plan.bars,
        links=Links(job=f"/api/jobs/{job.id}", backtest=f"/api/backtests/{backtest_id}"),
    )


@router.get("", response_model=BacktestPage)
async def list_backtests(
    principal: CurrentUser,
    session: ReadSession,
    page: Paging,
    sort: Annotated[str, Query(max_length=64, description="created_at, name, bars, num_trades or a metric")] = (
        "created_at"
    ),
    order: Order = "desc",
    kind: Annotated[Literal["single", "walk_forward", "monte_carlo", "sweep"] | None, Query()] = None,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
) -> BacktestPage:
    rows, total = await service.list_backtests(
        session,
        principal,
        limit=page.limit,
        offset=page.offset,
        sort=sort,
        order=order,
        kind=kind,
        strategy=strategy,
    )
    items = [BacktestSummary.model_validate(_summary_fields(r)) for r in rows]
    return BacktestPage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/compare", response_model=CompareOut)
async def compare(
    principal: CurrentUser,
    session: ReadSession,
    ids: Annotated[str, Query(max_length=400, description="Comma-separated backtest ids (1 to 10)")],
) -> CompareOut:
    """Several results side by side: one metrics table (metric -> a value per result) and thinned equity curves."""
    parsed: list[uuid.UUID] = []
    for part in ids.split(","):
        try:
            parsed.append(uuid.UUID(part.strip()))
        except ValueError:
            raise Invalid(f"ids: {part.strip()[:40]!r} is not a backtest id") from None
    rows = await service.compare(session, principal, parsed)
    names = [m for m in service.METRIC_UNITS if any(m in (r.performance_metrics or {}) for r in rows)]
    missing = MetricOut(value=None, reason="not computed for this result")
    table = {
        m: [
            MetricOut.model_validate((r.performance_metrics or {})[m])
            if m in (r.performance_metrics or {})
            else missing
            for r in rows
        ]
        for m in names
    }
    items = [
        CompareItem(
            id=r.id,
            name=r.name,
            kind=r.kind,
            strategy=r.strategy,
            strategy_params=r.strategy_params,
            symbols=r.symbols,
            timeframe=r.timeframe,
            range_start=r.range_start,
            range_end=r.range_end,
            config=r.config,
            fingerprint=str(r.fingerprint.get("combined", "")),
            equity=_thin(r.equity_curve, COMPARE_POINTS),
        )
        for r in rows
    ]
    return CompareOut(items=items, metrics=table)


@router.get("/{backtest_id}", response_model=BacktestDetail, response_model_by_alias=True)
async def detail(
    backtest_id: uuid.UUID,
    principal: CurrentUser,
    session: ReadSession,
    trades_limit: TradesLimit = 50,
    trades_offset: TradesOffset = 0,
) -> BacktestDetail:
    """Metrics (undefined ones null with a reason), chart series (equity, drawdown, benchmark; at most about
    2,000 points each), the robustness summary and a page of trades."""
    row = await service.get_owned(session, principal, backtest_id)
    trades, total = await service.trades(session, row, limit=trades_limit, offset=trades_offset)
    robustness = _robustness_summary(row.robustness, f"/api/backtests/{row.id}/runs")
    return BacktestDetail.model_validate(
        {
            **_summary_fields(row),
            "metrics": _metrics(row.performance_metrics),
            "config": row.config,
            "run_options": row.run_options,
            "data_sources": row.data_sources,
            "fingerprint_parts": row.fingerprint,
            "equity": _series(row.equity_curve),
            "drawdown": _series(row.drawdown_curve),
            "benchmark": _series(row.benchmark_curve),
            "robustness": robustness,
            "trades_summary": {"count": row.num_trades, "groups": row.trades_data or []},
            "trades": TradePage(
                items=[TradeOut.model_validate(t) for t in trades],
                total=total,
                limit=trades_limit,
                offset=trades_offset,
            ),
        }
    )


def _robustness_summary(raw: dict[str, Any] | None, runs_url: str) -> dict[str, Any] | None:
    """The detail carries Monte Carlo bands in full; sweep rows and walk-forward windows are counted here and
    listed (sortable, paginated) by ``/runs``."""
    if raw is None:
        return None
    if raw.get("type") == "sweep":
        rows = raw.get("rows", [])
        return {k: v for k, v in raw.items() if k != "rows"} | {"rows": len(rows), "runs_url": runs_url}
    if raw.get("type") == "walk_forward":
        windows = raw.get("windows", [])
        return {k: v for k, v in raw.items() if k != "windows"} | {"windows": len(windows), "runs_url": runs_url}
    return raw


@router.get("/{backtest_id}/trades", response_model=TradePage, response_model_by_alias=True)
async def trade_list(backtest_id: uuid.UUID, principal: CurrentUser, session: ReadSession, page: Paging) -> TradePage:
    """Trades in closing order, with entry/exit reasons, fees, P&L and return."""
    row = await service.get_owned(session, principal, backtest_id)
    trades, total = await service.trades(session, row, limit=page.limit, offset=page.offset)
    return TradePage(
        items=[TradeOut.model_validate(t) for t in trades], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{backtest_id}/runs", response_model=RunPage)
async def runs(
    backtest_id: uuid.UUID,
    principal: CurrentUser,
    session: ReadSession,
    page: Paging,
    sort: Annotated[str | None, Query(max_length=64, description="Any metric (walk-forward: also 'window')")] = None,
    order: Annotated[Literal["asc", "desc"] | None, Query()] = None,
) -> RunPage:
    """A sweep's results table or a walk-forward's windows (out-of-sample metrics), sorted by any metric;
    undefined values sort last."""
    row = await service.get_owned(session, principal, backtest_id)
    kind, key, descending, ranked = service.run_rows(row, sort, order)
    window = ranked[page.offset : page.offset + page.limit]
    items = [RunRow.model_validate({"rank": page.offset + i + 1, **item}) for i, item in enumerate(window)]
    return RunPage(
        kind=kind,
        sort=key,
        order="desc" if descending else "asc",
        items=items,
        total=len(ranked),
        limit=page.limit,
        offset=page.offset,
    )


@router.delete("/{backtest_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(backtest_id: uuid.UUID, request: Request, principal: Trader, uow: UoW) -> Response:
    """Delete a result and its trades (audited)."""
    await service.delete_backtest(uow, audit_context(request), principal, backtest_id)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
