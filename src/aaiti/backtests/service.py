"""Backtest use cases: validate a run request and turn it into a job, store the job's result, read results.

Validation happens in the request, before anything is stored (422 with the reason): the range, the symbols, the
data available for them at the timeframe asked for, the bar cap, the strategy's parameters, the run kind's
settings and the work it implies. A valid request becomes one ``backtest.run`` job; the worker returns the whole
result, and :func:`store_result` (the job kind's ``on_success``) writes the ``backtests`` row and every trade in
the transaction that marks the job succeeded, then announces ``backtest_completed``. A failed or cancelled job
stores nothing.

Candles: each symbol's data comes from one series, the one that covers the most of the range (then: no
resampling needed, bundled files before CoinGecko before user imports, then by name), or the pinned ``source``.
Bundled series are read from the package's own files (by the worker, too, so the job row holds only a
reference); series stored in the database (CoinGecko backfills, CSV imports) are read here and copied into the
job's parameters. A coarser timeframe than a series' own is aggregated (complete buckets only); a finer one is
refused.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import numpy as np
import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.backtests import repository as repo
from aaiti.backtests.models import Backtest, BacktestTrade
from aaiti.backtests.schemas import (
    MAX_REFITS,
    BacktestIn,
    ForecastOptions,
    MonteCarloSpec,
    SweepSpec,
    WalkForwardSpec,
)
from aaiti.backtests.tasks import (
    MC_MAX_CELLS,
    BacktestJobParams,
    CandleInput,
    ModelRef,
    PackedCandles,
    RunSpec,
    prepare_candles,
)
from aaiti.core.audit import AuditContext, record_audit
from aaiti.core.clock import Clock
from aaiti.core.db.session import UnitOfWork
from aaiti.core.errors import Conflict, Invalid, NotFound, TooManyRequests, Unavailable
from aaiti.core.principal import Principal
from aaiti.core.tasks.models import Job
from aaiti.core.tasks.registry import JobKind, register
from aaiti.core.tasks.runner import TaskRunner
from aaiti.core.tasks.service import ACTIVE, submit_job
from aaiti.data import bundled_datasets, load_bundled
from aaiti.market import repository as market_repo
from aaiti.market.symbols import normalize_symbol
from aaiti.ml import repository as ml_repo
from aaiti.ml.models import ModelVersion
from aaiti.trading.candles import TIMEFRAME_MS, Candles, align
from aaiti.trading.metrics import performance_metrics
from aaiti.trading.robustness import expand_grid
from aaiti.trading.strategies import ALL_STRATEGIES, FORECAST_STRATEGIES, Strategy, create_strategy

log = structlog.get_logger(__name__)

BACKTEST_KIND: Final = "backtest.run"
#: Bars (summed over the symbols) one run may simulate. Also bounds the rows read for one symbol.
MAX_BARS: int = 1_000_000
#: Candles stored in the database travel inside the job's parameters (the worker has no database); bundled
#: datasets do not count here, the worker reads those files itself.
MAX_INLINE_BARS: int = 250_000
#: Parameter sets of one sweep or walk-forward grid.
MAX_GRID_RUNS: int = 2_000
#: Bars x parameter sets (x windows) one job may simulate: bounds the time a worker is busy.
MAX_WORK_BARS: int = 200_000_000
MAX_WINDOWS: int = 1_000
MAX_COMPARE: Final = 10
HEADLINE: Final = ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate", "trades")
DAY_MS: Final = 86_400_000


# ------------------------------------------------------------------------------------------------ catalogue


def metric_units() -> dict[str, str]:
    """Every metric a result carries, with its unit (in report order)."""
    ts = np.array([0, DAY_MS], dtype=np.int64)
    eq = np.array([1.0, 1.0])
    sample = performance_metrics(ts, eq, 1.0, benchmark=eq, in_market=np.array([False, False]), fees_paid=0.0)
    return {name: m.unit for name, m in sample.items()}


METRIC_UNITS: Final = metric_units()
SORTABLE: Final = (*repo.COLUMN_SORTS, *METRIC_UNITS)


def limits() -> dict[str, int]:
    return {
        "max_bars": MAX_BARS,
        "max_inline_bars": MAX_INLINE_BARS,
        "max_grid_runs": MAX_GRID_RUNS,
        "max_work_bars": MAX_WORK_BARS,
        "max_windows": MAX_WINDOWS,
        "max_symbols": 10,
        "max_compare": MAX_COMPARE,
        "monte_carlo_max_cells": MC_MAX_CELLS,
    }


def catalog() -> dict[str, Any]:
    from aaiti.trading.engine import BacktestConfig
    from aaiti.trading.strategies import strategy_catalog

    return {
        "strategies": strategy_catalog(include_forecast=True),
        "config_schema": BacktestConfig.model_json_schema(),
        "run_kinds": {
            "single": {"type": "object", "properties": {}, "description": "One backtest"},
            "sweep": SweepSpec.model_json_schema(),
            "walk_forward": WalkForwardSpec.model_json_schema(),
            "monte_carlo": MonteCarloSpec.model_json_schema(),
        },
        "timeframes": list(TIMEFRAME_MS),
        "sortable_metrics": list(SORTABLE),
        "limits": limits(),
    }


# ------------------------------------------------------------------------------------------------- candles


@dataclass(frozen=True, slots=True)
class Candidate:
    """One series a symbol's candles could come from."""

    source: str
    stored_timeframe: str
    first_ms: int
    last_ms: int
    granularity_ms: int
    dataset: str | None = None

    def describe(self) -> str:
        return f"{self.source} {self.stored_timeframe} {_day(self.first_ms)}..{_day(self.last_ms)}"


@dataclass(frozen=True, slots=True)
class Resolved:
    symbol: str
    candidate: Candidate
    candles: Candles


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _to_ms(when: datetime) -> int:
    return int(when.astimezone(UTC).timestamp() * 1000)


def _source_rank(source: str) -> int:
    if source.startswith("bundled:"):
        return 0
    if source == "coingecko":
        return 1
    return 2


async def _bundled_candidates(ticker: str) -> list[Candidate]:
    out = []
    for ds in bundled_datasets():
        if ds.symbol != ticker:
            continue
        candles = await asyncio.to_thread(load_bundled, ds.name)
        tf_ms = TIMEFRAME_MS[ds.timeframe]
        out.append(
            Candidate(f"bundled:{ds.exchange}", ds.timeframe, int(candles.ts[0]), int(candles.ts[-1]), tf_ms, ds.name)
        )
    return out


async def _stored_candidates(session: AsyncSession, ticker: str) -> list[Candidate]:
    out = []
    for info in await market_repo.series_summary(session, ticker):
        # Bundled files are read from the package (identical data, and no copy into the job).
        if info.source.startswith("bundled:") or info.timeframe not in TIMEFRAME_MS:
            continue
        out.append(
            Candidate(
                info.source,
                info.timeframe,
                _to_ms(info.first),
                _to_ms(info.last),
                int(info.granularity_ms),
            )
        )
    return out


async def _known_symbols(session: AsyncSession) -> list[str]:
    stored = {s.symbol for s in await market_repo.series_summary(session)}
    return sorted(stored | {d.symbol for d in bundled_datasets()})


def _pick(
    ticker: str, candidates: list[Candidate], timeframe: str, start_ms: int, end_ms: int, source: str | None
) -> Candidate:
    tf_ms = TIMEFRAME_MS[timeframe]
    if source is not None:
        pinned = [c for c in candidates if c.source == source]
        if not pinned:
            have = sorted({c.source for c in candidates})
            raise Invalid(f"no {ticker} candles from source {source!r}; available sources: {', '.join(have)}")
        candidates = pinned
    usable = [c for c in candidates if tf_ms % TIMEFRAME_MS[c.stored_timeframe] == 0 and c.granularity_ms <= tf_ms]
    if not usable:
        finest = min(candidates, key=lambda c: max(TIMEFRAME_MS[c.stored_timeframe], c.granularity_ms))
        raise Invalid(
            f"timeframe {timeframe} is finer than the {ticker} data: the finest series is {finest.describe()}; "
            "candles are never labelled finer than the data they come from"
        )

    def overlap(c: Candidate) -> int:
        return min(end_ms, c.last_ms + TIMEFRAME_MS[c.stored_timeframe]) - max(start_ms, c.first_ms)

    usable.sort(key=lambda c: (-overlap(c), c.stored_timeframe != timeframe, _source_rank(c.source), c.source))
    best = usable[0]
    if overlap(best) <= 0:
        available = "; ".join(c.describe() for c in usable)
        raise Invalid(f"no {ticker} data between {_day(start_ms)} and {_day(end_ms)} UTC; available: {available}")
    return best


async def _load(
    session: AsyncSession, ticker: str, pick: Candidate, timeframe: str, start_ms: int, end_ms: int
) -> Candles:
    stored_ms = TIMEFRAME_MS[pick.stored_timeframe]
    lo, hi = max(start_ms, pick.first_ms), min(end_ms, pick.last_ms + stored_ms)
    if math.ceil((hi - lo) / stored_ms) > MAX_BARS:
        raise Invalid(
            f"{ticker}: the range holds up to {math.ceil((hi - lo) / stored_ms):,} stored {pick.stored_timeframe} "
            f"candles, more than the cap of {MAX_BARS:,} bars; shorten the range or use a coarser timeframe"
        )
    if pick.dataset is not None:
        raw = await asyncio.to_thread(load_bundled, pick.dataset)
    else:
        stored = await market_repo.fetch_series(
            session, source=pick.source, symbol=ticker, timeframe=pick.stored_timeframe, start_ms=lo, end_ms=hi
        )
        raw = stored.candles
    return await asyncio.to_thread(prepare_candles, raw, pick.stored_timeframe, timeframe, start_ms, end_ms)


async def resolve_candles(
    session: AsyncSession,
    symbols: Sequence[str],
    timeframe: str,
    start_ms: int,
    end_ms: int,
    source: str | None = None,
) -> list[Resolved]:
    """Pick, load and align each symbol's candles for ``[start_ms, end_ms)`` at ``timeframe``; ``Invalid`` with
    the reason when a symbol is unknown, has no data in the range or only coarser data, or the cap is exceeded."""
    tf_ms = TIMEFRAME_MS[timeframe]
    span = math.ceil((end_ms - start_ms) / tf_ms)
    picks: dict[str, Candidate] = {}
    for ticker in symbols:
        candidates = await _bundled_candidates(ticker) + await _stored_candidates(session, ticker)
        if not candidates:
            known = await _known_symbols(session)
            raise Invalid(f"unknown symbol {ticker!r}: no bundled or stored candles; known: {', '.join(known)}")
        picks[ticker] = _pick(ticker, candidates, timeframe, start_ms, end_ms, source)
    upper = sum(
        min(span, math.ceil((min(end_ms, p.last_ms + tf_ms) - max(start_ms, p.first_ms)) / tf_ms))
        for p in picks.values()
    )
    if upper > MAX_BARS:
        raise Invalid(
            f"the run would simulate up to {upper:,} bars ({len(symbols)} symbol(s) at {timeframe}), more than the "
            f"cap of {MAX_BARS:,}; shorten the range or use a coarser timeframe"
        )
    loaded = {t: await _load(session, t, p, timeframe, start_ms, end_ms) for t, p in picks.items()}
    for ticker, candles in loaded.items():
        if len(candles) == 0:
            raise Invalid(
                f"no complete {timeframe} {ticker} bars between {_day(start_ms)} and {_day(end_ms)} UTC "
                f"in {picks[ticker].describe()}"
            )
    aligned = align(loaded) if len(loaded) > 1 else loaded
    if len(next(iter(aligned.values()))) == 0:
        raise Invalid(f"{', '.join(symbols)} have no {timeframe} bar in common between the dates given")
    return [Resolved(t, picks[t], aligned[t]) for t in symbols]


# ---------------------------------------------------------------------------------------------- validation


def _pydantic_reason(exc: ValidationError, prefix: str) -> Invalid:
    errors = [
        {"loc": [prefix, *[str(p) for p in e.get("loc", ())]], "msg": str(e.get("msg", ""))[:300]}
        for e in exc.errors()[:20]
    ]
    first = errors[0]
    return Invalid(f"{'.'.join(first['loc'])}: {first['msg']}", extra={"errors": errors})


def build_strategy(name: str, params: Mapping[str, Any]) -> Strategy:
    cls = ALL_STRATEGIES.get(name)
    if cls is None:
        raise Invalid(f"unknown strategy {name!r}; known: {', '.join(sorted(ALL_STRATEGIES))}")
    try:
        return create_strategy(name, params)
    except ValidationError as exc:
        raise _pydantic_reason(exc, "params") from None
    except ValueError as exc:
        raise Invalid(f"params: {exc}") from None


def _wants_short(params: Mapping[str, Any]) -> bool:
    return params.get("short") is True or params.get("entry_short") is not None or params.get("short_below") is not None


def _check_grid(strategy: str, grid: Mapping[str, Sequence[Any]], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each grid value must be valid for its parameter on its own; combinations that break a rule between
    parameters (e.g. ``fast >= slow``) are allowed and reported as failed rows. At least one must be valid."""
    model = ALL_STRATEGIES[strategy].params_model
    fields = model.model_fields
    for key, values in grid.items():
        field = fields.get(key)
        if field is None:
            raise Invalid(f"grid: {strategy} has no parameter {key!r}; it has {', '.join(fields) or 'none'}")
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[(field.annotation, *field.metadata)])  # type: ignore[arg-type]
        for value in values:
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                raise _pydantic_reason(exc, f"grid.{key}") from None
    try:
        combos = expand_grid(grid, base)
    except ValueError as exc:
        raise Invalid(f"grid: {exc}") from None
    if len(combos) > MAX_GRID_RUNS:
        raise Invalid(f"grid: {len(combos):,} parameter sets; at most {MAX_GRID_RUNS:,}")
    errors: list[str] = []
    for params in combos:
        try:
            create_strategy(strategy, params)
            return combos
        except ValueError as exc:
            errors.append(str(exc).splitlines()[-1])
    raise Invalid(f"grid: no parameter set is valid, e.g. {errors[0]}")


def _check_metric(name: str, where: str) -> None:
    if name not in METRIC_UNITS:
        raise Invalid(f"{where}: unknown metric {name!r}; known: {', '.join(METRIC_UNITS)}")


def _check_kind(body: BacktestIn, params: dict[str, Any], bars: int, n_symbols: int) -> None:
    work_per_run = bars * n_symbols
    spec = body.sweep or body.walk_forward
    if spec is not None and not body.config.allow_short and True in spec.grid.get("short", []):
        raise Invalid("grid.short: short positions need config.allow_short (a margin account)")
    if body.kind == "sweep":
        assert body.sweep is not None
        _check_metric(body.sweep.metric, "sweep.metric")
        combos = _check_grid(body.strategy, body.sweep.grid, params)
        if len(combos) * work_per_run > MAX_WORK_BARS:
            raise Invalid(
                f"sweep: {len(combos):,} parameter sets x {work_per_run:,} bars exceed the {MAX_WORK_BARS:,} "
                "bar-simulations one job may run"
            )
    elif body.kind == "walk_forward":
        wf = body.walk_forward
        assert wf is not None
        _check_metric(wf.metric, "walk_forward.metric")
        combos = _check_grid(body.strategy, wf.grid, params)
        step = wf.step_bars or wf.test_bars
        if step < wf.test_bars:
            raise Invalid("walk_forward: step_bars must be at least test_bars (out-of-sample windows may not overlap)")
        if wf.train_bars + wf.test_bars > bars:
            raise Invalid(
                f"walk_forward: train_bars + test_bars = {wf.train_bars + wf.test_bars:,} exceeds the {bars:,} bars "
                "in the range"
            )
        windows = math.ceil((bars - wf.train_bars) / step)
        if windows > MAX_WINDOWS:
            raise Invalid(f"walk_forward: {windows:,} windows; at most {MAX_WINDOWS:,} (raise step_bars)")
        train = windows * wf.train_bars + (step * windows * (windows - 1) // 2 if wf.anchored else 0)
        work = (len(combos) * train + windows * wf.test_bars) * n_symbols
        if work > MAX_WORK_BARS:
            raise Invalid(f"walk_forward: about {work:,} bar-simulations exceed the {MAX_WORK_BARS:,} one job may run")
    elif body.kind == "monte_carlo":
        mc = body.monte_carlo
        assert mc is not None
        if mc.method == "return_block_bootstrap":
            days = math.ceil(bars * TIMEFRAME_MS[body.timeframe] / DAY_MS)
            if mc.n_sims * days > MC_MAX_CELLS:
                raise Invalid(f"monte_carlo: {mc.n_sims} simulations of {days:,} days exceed {MC_MAX_CELLS:,}")
            if mc.block_days > days:
                raise Invalid(f"monte_carlo: block_days {mc.block_days} exceeds the {days} days in the range")


@dataclass(frozen=True, slots=True)
class RunPlan:
    spec: RunSpec
    resolved: list[Resolved]
    artifact_file: str | None = None

    @property
    def bars(self) -> int:
        return len(self.resolved[0].candles)


def _check_request(body: BacktestIn) -> tuple[list[str], Strategy, dict[str, Any]]:
    """The checks that need no data: symbols, strategy and parameters, shorting, weights."""
    tickers = list(dict.fromkeys(normalize_symbol(s) for s in body.symbols))
    strategy = build_strategy(body.strategy, body.params)
    if body.strategy in FORECAST_STRATEGIES:
        if body.model_id is None:
            raise Invalid(f"model_id: {body.strategy} trades on a model's forecasts; name a trained model of yours")
        if body.kind not in ("single", "monte_carlo"):
            raise Invalid(f"kind: {body.strategy} runs as a single or monte_carlo run only")
    elif body.model_id is not None:
        raise Invalid(
            f"model_id: {body.strategy} does not use a model (model-driven: {', '.join(FORECAST_STRATEGIES)})"
        )
    params = strategy.params.model_dump(mode="json", by_alias=True)
    if _wants_short(params) and not body.config.allow_short:
        raise Invalid("params ask for short positions but config.allow_short is false (no margin account)")
    weights = body.config.weights
    if weights is not None and set(weights) != set(tickers):
        raise Invalid(f"config.weights must name exactly the symbols {', '.join(tickers)}")
    return tickers, strategy, params


def _finish_plan(
    body: BacktestIn,
    tickers: list[str],
    strategy: Strategy,
    params: dict[str, Any],
    resolved: list[Resolved],
    model: tuple[ModelRef, str] | None = None,
) -> RunPlan:
    bars = len(resolved[0].candles)
    if body.kind != "sweep" and strategy.warmup() >= bars:
        raise Invalid(
            f"{body.strategy} needs {strategy.warmup()} bars of warm-up and the range has only {bars}: "
            "it could never take a position"
        )
    _check_kind(body, params, bars, len(tickers))
    spec = RunSpec(
        name=body.name or f"{body.strategy} {'/'.join(tickers)} {body.timeframe}",
        kind=body.kind,
        symbols=tickers,
        timeframe=body.timeframe,
        start_ms=_to_ms(body.start),
        end_ms=_to_ms(body.end),
        strategy=body.strategy,
        params=params,
        config=body.config,
        engine=body.engine,
        periods_per_year=body.periods_per_year,
        risk_free_rate=body.risk_free_rate,
        sweep=body.sweep,
        walk_forward=body.walk_forward,
        monte_carlo=body.monte_carlo,
        model=model[0] if model is not None else None,
    )
    if model is not None:
        _check_forecast_range(model[0], resolved, body.timeframe)
    return RunPlan(spec, resolved, model[1] if model is not None else None)


def _check_forecast_range(ref: ModelRef, resolved: Sequence[Resolved], timeframe: str) -> None:
    bars = len(resolved[0].candles)
    if ref.policy == "walk_forward_refit":
        assert ref.train_bars is not None
        assert ref.refit_every is not None
        if ref.train_bars >= bars:
            raise Invalid(f"forecast.train_bars {ref.train_bars} leaves none of the {bars} bars to forecast")
        refits = math.ceil((bars - ref.train_bars + 1) / ref.refit_every)
        if refits > MAX_REFITS:
            raise Invalid(
                f"forecast: {refits} refits of {bars} bars every {ref.refit_every}; at most {MAX_REFITS} "
                "(raise refit_every)"
            )
        return
    last = int(resolved[0].candles.ts[-1])
    if last <= ref.training_end_ts:
        raise Invalid(
            f"the range ends on or before the end of model version {ref.version}'s training window "
            f"({_day(ref.training_end_ts)}): forecasts are only used after it (no look-ahead), so no bar could "
            "trade; move the range later"
        )


def _artifact_file(root: Path, relative: str) -> Path | None:
    """The artefact's absolute path, or None when it is missing or the recorded path leaves ``root``."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None


async def resolve_model(
    session: AsyncSession, owner: Principal, body: BacktestIn, artifact_root: Path | None
) -> tuple[ModelRef, str]:
    """The owner's model version that drives the run, and its artefact file (checked to lie in the artefact
    folder). Another user's model reads as missing (404); no trained version is a conflict (409); a version
    for another timeframe is refused (422)."""
    assert body.model_id is not None
    if artifact_root is None:
        raise Unavailable("the models service is not running")
    model = await ml_repo.get_model(session, owner.id, body.model_id)
    if model is None:
        raise NotFound("model not found")
    version: ModelVersion | None
    if body.model_version is None:
        version = await ml_repo.latest_version(session, model.id)
        if version is None:
            raise Conflict(f"model {model.id} has no trained version (status {model.training_status}); train it first")
    else:
        version = await session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == body.model_version)
        )
        if version is None:
            raise NotFound(f"model {model.id} has no version {body.model_version}")
    if model.target_timeframe != body.timeframe:
        raise Invalid(f"model {model.id} forecasts {model.target_timeframe} bars; the run is on {body.timeframe} bars")
    path = await asyncio.to_thread(_artifact_file, artifact_root, version.artifact_path)
    if path is None:
        raise Conflict(f"the artefact of model {model.id} version {version.version} is missing; retrain the model")
    options = body.forecast or ForecastOptions()
    refit = options.policy == "walk_forward_refit"
    ref = ModelRef(
        model_id=model.id,
        version=version.version,
        algorithm=version.algorithm,
        sha256=version.sha256,
        training_end_ts=int(version.training_window["end_ts"]),
        horizon=int(version.spec.get("horizon", 1)),
        policy=options.policy,
        refit_every=options.refit_every if refit else None,
        train_bars=options.train_bars if refit else None,
        window=options.window if refit else None,
    )
    return ref, str(path)


async def plan_run(
    session: AsyncSession,
    body: BacktestIn,
    now: datetime,
    owner: Principal | None = None,
    artifact_root: Path | None = None,
) -> RunPlan:
    """Validate ``body`` against the strategies and the data; ``Invalid`` with the reason, nothing stored.
    A model-driven strategy also needs the ``owner`` (whose model it must be) and the models' artefact root."""
    if body.end > now + timedelta(days=1):
        raise Invalid("end lies in the future: there are no candles there yet")
    tickers, strategy, params = _check_request(body)
    model: tuple[ModelRef, str] | None = None
    if body.model_id is not None:
        if owner is None:
            raise Invalid("model_id: model-driven runs need a signed-in owner")
        model = await resolve_model(session, owner, body, artifact_root)
    resolved = await resolve_candles(
        session, tickers, body.timeframe, _to_ms(body.start), _to_ms(body.end), body.source
    )
    return _finish_plan(body, tickers, strategy, params, resolved, model)


def plan_offline(body: BacktestIn, datasets: Mapping[str, str]) -> RunPlan:
    """The same validation for ``aaiti backtest`` (no server, no database): ``datasets`` maps each symbol of
    ``body`` to a bundled dataset name."""
    tickers, strategy, params = _check_request(body)
    if body.model_id is not None:
        raise Invalid("model_id: model-driven runs read a stored model; run them through the API")
    start_ms, end_ms = _to_ms(body.start), _to_ms(body.end)
    loaded: dict[str, Candles] = {}
    picks: dict[str, Candidate] = {}
    for ticker in tickers:
        name = datasets[ticker]
        raw = load_bundled(name)
        ds = next(d for d in bundled_datasets() if d.name == name)
        stored_ms = TIMEFRAME_MS[ds.timeframe]
        picks[ticker] = _pick(
            ticker,
            [Candidate(f"bundled:{ds.exchange}", ds.timeframe, int(raw.ts[0]), int(raw.ts[-1]), stored_ms, name)],
            body.timeframe,
            start_ms,
            end_ms,
            None,
        )
        loaded[ticker] = prepare_candles(raw, ds.timeframe, body.timeframe, start_ms, end_ms)
        if len(loaded[ticker]) == 0:
            raise Invalid(f"no complete {body.timeframe} {ticker} bars in {name} between the dates given")
    aligned = align(loaded) if len(loaded) > 1 else loaded
    bars = len(next(iter(aligned.values())))
    if bars == 0:
        raise Invalid(f"{', '.join(tickers)} have no {body.timeframe} bar in common between the dates given")
    if bars * len(tickers) > MAX_BARS:
        raise Invalid(f"{bars * len(tickers):,} bars exceed the cap of {MAX_BARS:,}")
    resolved = [Resolved(t, picks[t], aligned[t]) for t in tickers]
    return _finish_plan(body, tickers, strategy, params, resolved)


def job_params(plan: RunPlan, backtest_id: uuid.UUID) -> dict[str, Any]:
    inline = sum(len(r.candles) for r in plan.resolved if r.candidate.dataset is None)
    if inline > MAX_INLINE_BARS:
        raise Invalid(
            f"{inline:,} bars of stored (non-bundled) candles exceed the {MAX_INLINE_BARS:,} a job may carry; "
            "shorten the range or use a coarser timeframe"
        )
    inputs = [
        CandleInput(
            symbol=r.symbol,
            source=r.candidate.source,
            stored_timeframe=r.candidate.stored_timeframe,
            dataset=r.candidate.dataset,
            packed=None if r.candidate.dataset is not None else PackedCandles.pack(r.candles),
        )
        for r in plan.resolved
    ]
    params = BacktestJobParams(
        backtest_id=backtest_id,
        spec=plan.spec,
        inputs=inputs,
        expected_bars=plan.bars,
        artifact_file=plan.artifact_file,
    )
    return params.model_dump(mode="json")


async def check_capacity(session: AsyncSession, owner: Principal, max_active: int) -> None:
    """Refuse early (before loading any data) when the owner's job slots are full; ``submit_job`` checks again."""
    active = await session.scalar(
        select(func.count()).select_from(Job).where(Job.owner_id == owner.id, Job.status.in_(ACTIVE))
    )
    if (active or 0) >= max_active:
        raise TooManyRequests(f"at most {max_active} jobs may be queued or running per user", retry_after=5)


async def submit(
    uow: UnitOfWork,
    runner: TaskRunner,
    clock: Clock,
    ctx: AuditContext,
    owner: Principal,
    plan: RunPlan,
    *,
    max_active: int,
) -> tuple[Job, uuid.UUID]:
    backtest_id = uuid.uuid4()
    params = job_params(plan, backtest_id)
    job = await submit_job(
        uow, runner, clock, ctx, owner, BACKTEST_KIND, params, max_active=max_active, user_facing=False
    )
    spec = plan.spec
    record_audit(
        uow.session,
        ctx,
        "backtests.run",
        resource_type="backtest",
        resource_id=backtest_id,
        details={
            "job_id": str(job.id),
            "kind": spec.kind,
            "strategy": spec.strategy,
            "symbols": spec.symbols,
            "timeframe": spec.timeframe,
            "bars": plan.bars,
        },
    )
    return job, backtest_id


# ------------------------------------------------------------------------------------------ storing a result


def _decimal(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _trade_rows(backtest_id: uuid.UUID, trades: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "backtest_id": backtest_id,
            "seq": i,
            "symbol": t["symbol"],
            "side": t["side"],
            "qty": float(t["qty"]),
            "entry_time": _from_ms(int(t["entry_ts"])),
            "entry_bar": int(t["entry_bar"]),
            "entry_price": float(t["entry_price"]),
            "entry_reason": t["entry_reason"],
            "exit_time": _from_ms(int(t["exit_ts"])),
            "exit_bar": int(t["exit_bar"]),
            "exit_price": float(t["exit_price"]),
            "exit_reason": t["exit_reason"],
            "fees": float(t["fees"]),
            "pnl": float(t["pnl"]),
            "ret": float(t["return"]),
        }
        for i, t in enumerate(trades)
    ]


def _trade_groups(trades: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for t in trades:
        key = (t["symbol"], t["side"], t["exit_reason"])
        g = groups.setdefault(
            key, {"symbol": key[0], "side": key[1], "exit_reason": key[2], "count": 0, "pnl": 0.0, "fees": 0.0}
        )
        g["count"] += 1
        g["pnl"] += float(t["pnl"])
        g["fees"] += float(t["fees"])
    return [groups[k] for k in sorted(groups)]


async def store_result(uow: UnitOfWork, job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """``JobKind.on_success``: write the result (row + trades) in the job's success transaction. Idempotent: a
    result already stored for this backtest id is left as it is."""
    params = BacktestJobParams.model_validate(job.params)
    spec = params.spec
    backtest_id = params.backtest_id
    summary = {
        "backtest_id": str(backtest_id),
        "bars": int(result["bars"]),
        "num_trades": len(result["trades"]),
        "final_equity": float(result["final_equity"]),
        "total_return": result["metrics"]["total_return"]["value"],
        "fingerprint": result["fingerprint"]["combined"],
    }
    session = uow.session
    if await repo.exists(session, backtest_id):
        return summary
    start, end = _from_ms(spec.start_ms), _from_ms(spec.end_ms)
    row = Backtest(
        id=backtest_id,
        user_id=job.owner_id,
        symbols=spec.symbols,
        start_date=start.date(),
        end_date=end.date(),
        initial_capital=_decimal(result["initial_cash"]),
        final_capital=_decimal(result["final_equity"]),
        total_return=result["metrics"]["total_return"]["value"],
        performance_metrics=result["metrics"],
        trades_data=_trade_groups(result["trades"]),
        created_at=job.created_at,
        name=spec.name,
        kind=spec.kind,
        strategy=spec.strategy,
        strategy_params=spec.params,
        config=spec.config.model_dump(mode="json"),
        run_options={**spec.options(), **({"forecast": result["forecast"]} if result.get("forecast") else {})},
        timeframe=spec.timeframe,
        range_start=start,
        range_end=end,
        engine=str(result["engine"]),
        bars=int(result["bars"]),
        num_trades=len(result["trades"]),
        data_sources=[
            {
                "symbol": i.symbol,
                "source": i.source,
                "dataset": i.dataset,
                "stored_timeframe": i.stored_timeframe,
                "resampled": i.stored_timeframe != spec.timeframe,
                "first_bar": _from_ms(int(result["first_ts"])).isoformat(),
                "last_bar": _from_ms(int(result["last_ts"])).isoformat(),
            }
            for i in params.inputs
        ],
        fingerprint=result["fingerprint"],
        equity_curve=result["equity"],
        drawdown_curve=result["drawdown"],
        benchmark_curve=result["benchmark"],
        robustness=result["robustness"],
        job_id=job.id,
        # A model-driven result references its model, so the model cannot be deleted from under it (409).
        model_id=spec.model.model_id if spec.model is not None else None,
    )
    session.add(row)
    await session.flush()
    await repo.insert_trades(session, _trade_rows(backtest_id, result["trades"]))
    publisher = uow.publisher
    if publisher is not None:
        payload = {
            "backtest_id": str(backtest_id),
            "job_id": str(job.id),
            "name": spec.name,
            "kind": spec.kind,
            "strategy": spec.strategy,
            "symbols": spec.symbols,
            "timeframe": spec.timeframe,
            "total_return": summary["total_return"],
            "sharpe": result["metrics"].get("sharpe", {}).get("value"),
            "num_trades": summary["num_trades"],
            "fingerprint": summary["fingerprint"],
        }
        owner_room, job_room = f"user:{job.owner_id}", f"job:{job.id}"

        async def announce() -> None:
            await publisher.publish("backtest_completed", payload, owner_room)
            await publisher.publish("backtest_completed", payload, job_room)

        uow.after_commit(announce)
    log.info("backtest_stored", backtest_id=str(backtest_id), bars=row.bars, trades=row.num_trades)
    return summary


register(
    JobKind(
        BACKTEST_KIND,
        "aaiti.backtests.tasks:run_backtest_job",
        BacktestJobParams,
        user_submittable=False,
        on_success=store_result,
    )
)


# ---------------------------------------------------------------------------------------------------- reads


async def get_owned(session: AsyncSession, owner: Principal, backtest_id: uuid.UUID) -> Backtest:
    row = await repo.get_owned(session, owner.id, backtest_id)
    if row is None:
        raise NotFound("backtest not found")
    return row


def check_sort(sort: str) -> str:
    if sort not in SORTABLE:
        raise Invalid(f"cannot sort by {sort!r}; sortable: {', '.join(SORTABLE)}")
    return sort


async def list_backtests(
    session: AsyncSession,
    owner: Principal,
    *,
    limit: int,
    offset: int,
    sort: str,
    order: Literal["asc", "desc"],
    kind: str | None,
    strategy: str | None,
) -> tuple[list[Backtest], int]:
    return await repo.list_owned(
        session,
        owner.id,
        limit=limit,
        offset=offset,
        sort=check_sort(sort),
        order=order,
        kind=kind,
        strategy=strategy,
    )


async def trades(session: AsyncSession, row: Backtest, *, limit: int, offset: int) -> tuple[list[BacktestTrade], int]:
    return await repo.trade_page(session, row.id, limit=limit, offset=offset)


def _expand(compact: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    if compact is None:
        return None
    values: Mapping[str, Any] = compact.get("values", {})
    reasons: Mapping[str, Any] = compact.get("reasons", {})
    return {k: {"value": v, "reason": reasons.get(k), "unit": METRIC_UNITS.get(k, "")} for k, v in values.items()}


def run_rows(row: Backtest, sort: str | None, order: Literal["asc", "desc"] | None) -> tuple[str, str, bool, list[Any]]:
    """The sweep's results table or the walk-forward windows, ranked by ``sort`` (undefined values last, ties in
    run order). Defaults: the sweep's own metric and direction; walk-forward windows in time order."""
    rob = row.robustness or {}
    kind = rob.get("type")
    if kind not in ("sweep", "walk_forward"):
        raise NotFound("this backtest has no table of runs (only sweeps and walk-forward runs do)")
    if kind == "sweep":
        items = [
            {"params": r["params"], "metrics": _expand(r["metrics"]), "error": r.get("error")} for r in rob["rows"]
        ]
        default_sort, default_desc = str(rob.get("metric", "sharpe")), bool(rob.get("descending", True))
    else:
        items = [
            {
                "params": w["best_params"],
                "metrics": _expand(w["out_of_sample"]),
                "in_sample": _expand(w["in_sample"]),
                "window": {k: w[k] for k in ("train", "test", "train_start_ts", "test_start_ts", "test_end_ts")},
            }
            for w in rob["windows"]
        ]
        default_sort, default_desc = "window", False
    key = sort or default_sort
    descending = (order == "desc") if order else default_desc
    if key == "window" and kind == "walk_forward":
        ranked = list(reversed(items)) if descending else items
    else:
        if key not in METRIC_UNITS:
            raise Invalid(f"cannot sort by {key!r}; sortable: {', '.join(METRIC_UNITS)}")

        def value(item: dict[str, Any]) -> float | None:
            m = item["metrics"]
            return None if m is None or key not in m else m[key]["value"]

        defined = [i for i in items if value(i) is not None]
        undefined = [i for i in items if value(i) is None]
        defined.sort(key=lambda i: value(i) or 0.0, reverse=descending)
        ranked = defined + undefined
    return kind, key, descending, ranked


async def compare(session: AsyncSession, owner: Principal, ids: Sequence[uuid.UUID]) -> list[Backtest]:
    unique = list(dict.fromkeys(ids))
    if not 1 <= len(unique) <= MAX_COMPARE:
        raise Invalid(f"give 1 to {MAX_COMPARE} backtest ids")
    rows = {r.id: r for r in await repo.get_many_owned(session, owner.id, unique)}
    missing = [i for i in unique if i not in rows]
    if missing:
        raise NotFound(f"backtest not found: {missing[0]}")
    return [rows[i] for i in unique]


async def delete_backtest(uow: UnitOfWork, ctx: AuditContext, owner: Principal, backtest_id: uuid.UUID) -> None:
    row = await get_owned(uow.session, owner, backtest_id)
    details = {
        "name": row.name,
        "kind": row.kind,
        "strategy": row.strategy,
        "fingerprint": row.fingerprint.get("combined"),
    }
    await repo.delete_owned(uow.session, row)
    record_audit(
        uow.session, ctx, "backtests.delete", resource_type="backtest", resource_id=backtest_id, details=details
    )


__all__ = [
    "BACKTEST_KIND",
    "HEADLINE",
    "MAX_BARS",
    "MAX_INLINE_BARS",
    "METRIC_UNITS",
    "SORTABLE",
    "RunPlan",
    "catalog",
    "check_capacity",
    "compare",
    "delete_backtest",
    "get_owned",
    "job_params",
    "list_backtests",
    "plan_offline",
    "plan_run",
    "resolve_candles",
    "run_rows",
    "store_result",
    "submit",
    "trades",
]
