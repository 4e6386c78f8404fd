"""Robustness tools: parameter sweeps, walk-forward optimisation and Monte Carlo resampling.

Pure functions of their inputs (Monte Carlo takes an explicit seed), so the caller can run them in worker
processes. Strategies are named and parametrised as in :mod:`aaiti.trading.strategies`.

Walk-forward windows: with ``train_bars = T``, ``test_bars = S`` and ``step_bars = S`` (default), window ``k``
trains on bars ``[k*S, k*S + T)`` (rolling) or ``[0, k*S + T)`` (anchored) and tests on the ``S`` bars that
follow. Every parameter set of the grid is backtested in-sample; the one with the best ``metric`` (undefined
values rank last; ties keep grid order) is then backtested out-of-sample, starting flat with the initial cash.
Targets are computed once on the whole series -- every strategy is causal, so the value at a bar only uses bars
up to it -- which gives each window the same warm-up history it would have had live, and never data after the
window. The out-of-sample equity curves are chained into one ("stitched") curve.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from aaiti.trading.candles import Candles, FloatArray, IntArray
from aaiti.trading.engine import BacktestConfig, BacktestResult, backtest, bar_ms_of
from aaiti.trading.metrics import (
    Metric,
    compute_metrics,
    daily_equity,
    performance_metrics,
    simple_returns,
)
from aaiti.trading.portfolio import Trade
from aaiti.trading.strategies import Strategy, StrategyParams, StrategyStream, create_strategy

MAX_GRID = 10_000


def expand_grid(grid: Mapping[str, Sequence[Any]], base: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Cartesian product of the grid's value lists (keys in the given order), each merged over ``base``."""
    keys = list(grid)
    for k in keys:
        if not isinstance(grid[k], Sequence) or isinstance(grid[k], str) or len(grid[k]) == 0:
            raise ValueError(f"grid entry {k!r} must be a non-empty list of values")
    count = math.prod(len(grid[k]) for k in keys)
    if count > MAX_GRID:
        raise ValueError(f"grid has {count} combinations; at most {MAX_GRID}")
    return [
        {**(base or {}), **dict(zip(keys, combo, strict=True))} for combo in itertools.product(*(grid[k] for k in keys))
    ]


# --- running a strategy on a slice with targets computed on the full history ---------------------------------


class _TargetsParams(StrategyParams):
    pass


class _Replay:
    def __init__(self, targets: list[float]) -> None:
        self.targets = targets
        self.i = 0

    def update(
        self,
        ts: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        forecast: float | None = None,
    ) -> float:
        t = self.targets[self.i]
        self.i += 1
        return t

    def get_state(self) -> dict[str, Any]:
        return {"i": self.i}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.i = int(state["i"])


class PrecomputedTargets(Strategy):
    """Targets computed beforehand replayed bar by bar, identically by either engine (used for walk-forward
    windows, and by tests that pin exact target sequences)."""

    name: ClassVar[str] = "precomputed"
    title: ClassVar[str] = "Precomputed targets"
    description: ClassVar[str] = "internal"
    params_model: ClassVar[type[StrategyParams]] = _TargetsParams

    def __init__(self, targets: FloatArray) -> None:
        super().__init__(None)
        self._t = np.asarray(targets, dtype=np.float64)

    def warmup(self) -> int:
        return 0

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        return self._t[: len(candles)]

    def stream(self) -> StrategyStream:
        return _Replay(self._t.tolist())


def _as_map(candles: Candles | Mapping[str, Candles]) -> dict[str, Candles]:
    return {"asset": candles} if isinstance(candles, Candles) else dict(candles)


def _full_targets(cmap: Mapping[str, Candles], strategy: Strategy) -> dict[str, FloatArray]:
    return {s: strategy.targets(c) for s, c in cmap.items()}


def _run_slice(
    cmap: Mapping[str, Candles],
    targets: Mapping[str, FloatArray],
    start: int,
    stop: int,
    config: BacktestConfig,
    bar_ms: int,
) -> BacktestResult:
    sliced = {s: c.slice(start, stop) for s, c in cmap.items()}
    strategies = {s: PrecomputedTargets(targets[s][start:stop]) for s in cmap}
    return backtest(sliced, strategies, config, bar_ms=bar_ms)


# --- parameter sweep ----------------------------------------------------------------------------------------------


@dataclass
class SweepRow:
    """One parameter set: its metrics (``{name: Metric}``), or the reason it could not run."""

    params: dict[str, Any]
    metrics: dict[str, Metric] | None = None
    error: str | None = None

    def value(self, metric: str) -> float | None:
        if self.metrics is None or metric not in self.metrics:
            return None
        return self.metrics[metric].value

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "metrics": None if self.metrics is None else {k: v.to_dict() for k, v in self.metrics.items()},
            "error": self.error,
        }


def sweep_one(
    candles: Candles | Mapping[str, Candles],
    strategy_name: str,
    params: Mapping[str, Any],
    config: BacktestConfig,
    periods_per_year: float = 365.0,
) -> SweepRow:
    """Backtest one parameter set (the unit of work a worker process runs)."""
    try:
        strategy = create_strategy(strategy_name, params)
    except ValueError as exc:
        return SweepRow(dict(params), None, str(exc))
    result = backtest(candles, strategy, config)
    return SweepRow(dict(params), compute_metrics(result, periods_per_year=periods_per_year))


def run_sweep(
    candles: Candles | Mapping[str, Candles],
    strategy_name: str,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig,
    base_params: Mapping[str, Any] | None = None,
    periods_per_year: float = 365.0,
) -> list[SweepRow]:
    """Every combination of ``grid`` (over ``base_params``), in grid order. Invalid combinations (for example
    ``fast >= slow``) become rows with an ``error`` instead of failing the sweep."""
    return [sweep_one(candles, strategy_name, p, config, periods_per_year) for p in expand_grid(grid, base_params)]


def sort_rows(rows: Sequence[SweepRow], metric: str, descending: bool = True) -> list[SweepRow]:
    """Rows ordered by ``metric``; rows where it is undefined (or that failed) go last, in their original order."""
    defined = [r for r in rows if r.value(metric) is not None]
    undefined = [r for r in rows if r.value(metric) is None]
    defined.sort(key=lambda r: r.value(metric) or 0.0, reverse=descending)
    return defined + undefined


# --- walk-forward -------------------------------------------------------------------------------------------------


@dataclass
class WalkForwardWindow:
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    train_start_ts: int
    test_start_ts: int
    test_end_ts: int
    best_params: dict[str, Any]
    in_sample: dict[str, Metric]
    out_of_sample: dict[str, Metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [self.train_start, self.train_end],
            "test": [self.test_start, self.test_end],
            "train_start_ts": self.train_start_ts,
            "test_start_ts": self.test_start_ts,
            "test_end_ts": self.test_end_ts,
            "best_params": self.best_params,
            "in_sample": {k: v.to_dict() for k, v in self.in_sample.items()},
            "out_of_sample": {k: v.to_dict() for k, v in self.out_of_sample.items()},
        }


@dataclass
class WalkForwardResult:
    windows: list[WalkForwardWindow]
    ts: IntArray
    equity: FloatArray
    metrics: dict[str, Metric]
    trades: list[Trade] = field(default_factory=list)
    metric: str = "sharpe"


def walk_forward(
    candles: Candles | Mapping[str, Candles],
    strategy_name: str,
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig,
    *,
    train_bars: int,
    test_bars: int,
    step_bars: int | None = None,
    anchored: bool = False,
    metric: str = "sharpe",
    maximize: bool = True,
    base_params: Mapping[str, Any] | None = None,
    periods_per_year: float = 365.0,
    min_periods: int = 30,
    on_window: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Walk-forward optimisation (see the module docstring). Raises ``ValueError`` if no window fits or no
    parameter set of the grid is valid.

    ``on_window(done, total)`` is called after each window (progress; it may raise to stop the run)."""
    cmap = _as_map(candles)
    first = next(iter(cmap.values()))
    n = len(first)
    step = step_bars or test_bars
    if train_bars < 2 or test_bars < 1 or step < 1:
        raise ValueError("train_bars >= 2, test_bars >= 1 and step_bars >= 1 are required")
    if train_bars + test_bars > n:
        raise ValueError(f"train_bars + test_bars = {train_bars + test_bars} exceeds the {n} bars available")
    bar_ms = bar_ms_of(first.ts)
    candidates: list[tuple[dict[str, Any], dict[str, FloatArray]]] = []
    errors: list[str] = []
    for params in expand_grid(grid, base_params):
        try:
            strategy = create_strategy(strategy_name, params)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        candidates.append((params, _full_targets(cmap, strategy)))
    if not candidates:
        raise ValueError(f"no valid parameter set in the grid: {errors[:3]}")
    windows: list[WalkForwardWindow] = []
    stitched_ts: list[IntArray] = []
    stitched_eq: list[FloatArray] = []
    all_trades: list[Trade] = []
    level = config.initial_cash
    total = len(range(train_bars, n, step))
    k = 0
    while True:
        test_start = k * step + train_bars
        test_end = min(test_start + test_bars, n)
        if test_start >= n or test_end - test_start < 1:
            break
        train_start = 0 if anchored else test_start - train_bars
        best: tuple[dict[str, Any], dict[str, FloatArray], dict[str, Metric]] | None = None
        best_score = -math.inf
        for params, targets in candidates:
            ins = compute_metrics(
                _run_slice(cmap, targets, train_start, test_start, config, bar_ms),
                periods_per_year=periods_per_year,
                min_periods=min_periods,
            )
            v = ins[metric].value if metric in ins else None
            if metric not in ins:
                raise ValueError(f"unknown metric {metric!r}")
            score = -math.inf if v is None else (v if maximize else -v)
            if best is None or score > best_score:
                best = (params, targets, ins)
                best_score = score
        assert best is not None
        params, targets, ins = best
        oos = _run_slice(cmap, targets, test_start, test_end, config, bar_ms)
        oos_metrics = compute_metrics(oos, periods_per_year=periods_per_year, min_periods=min_periods)
        windows.append(
            WalkForwardWindow(
                train_start,
                test_start,
                test_start,
                test_end,
                int(first.ts[train_start]),
                int(first.ts[test_start]),
                int(first.ts[test_end - 1]),
                params,
                ins,
                oos_metrics,
            )
        )
        growth = oos.equity / config.initial_cash
        stitched_ts.append(oos.ts)
        stitched_eq.append(level * growth)
        level = float(level * growth[-1])
        all_trades.extend(oos.trades)
        k += 1
        if on_window is not None:
            on_window(k, total)
    ts = np.concatenate(stitched_ts)
    equity = np.concatenate(stitched_eq)
    overall = performance_metrics(
        ts,
        equity,
        config.initial_cash,
        trades=all_trades,
        periods_per_year=periods_per_year,
        min_periods=min_periods,
    )
    return WalkForwardResult(windows, ts, equity, overall, all_trades, metric)


# --- Monte Carlo --------------------------------------------------------------------------------------------------

PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass
class MonteCarloResult:
    """Percentile bands (``{metric: {"p5": ..., ..., "p95": ...}}``) of ``total_return``, ``max_drawdown`` and
    ``sharpe`` over ``n_sims`` resampled paths, the probability that a path loses money, and the actual values.
    ``undefined`` counts paths where a metric had no value (e.g. no variance); they are left out of its bands."""

    method: str
    n_sims: int
    seed: int
    bands: dict[str, dict[str, float | None]]
    prob_loss: float
    actual: dict[str, float | None]
    undefined: dict[str, int]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_sims": self.n_sims,
            "seed": self.seed,
            "bands": self.bands,
            "prob_loss": self.prob_loss,
            "actual": self.actual,
            "undefined": self.undefined,
            "note": self.note,
        }


def _bands(values: FloatArray) -> tuple[dict[str, float | None], int]:
    ok = values[np.isfinite(values)]
    if len(ok) == 0:
        return {f"p{int(p)}": None for p in PERCENTILES}, len(values)
    q = np.percentile(ok, PERCENTILES)
    return {f"p{int(p)}": float(v) for p, v in zip(PERCENTILES, q, strict=True)}, int(len(values) - len(ok))


def _path_stats(paths: np.ndarray, periods_per_year: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of growth-factor paths (starting at 1 before the first step): total return, max drawdown and the
    annualised Sharpe ratio of the step returns (NaN without variance)."""
    total = paths[:, -1] - 1.0
    with_start = np.concatenate((np.ones((paths.shape[0], 1)), paths), axis=1)
    peak = np.maximum.accumulate(with_start, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, with_start / peak - 1.0, -1.0).min(axis=1)
        steps = with_start[:, 1:] / with_start[:, :-1] - 1.0
        sd = steps.std(axis=1, ddof=1) if steps.shape[1] > 1 else np.full(paths.shape[0], np.nan)
        sharpe = np.where(sd > 0, steps.mean(axis=1) / sd * math.sqrt(periods_per_year), np.nan)
    return total, dd, sharpe


def monte_carlo_trades(
    result: BacktestResult,
    n_sims: int = 1000,
    seed: int = 0,
    method: Literal["reshuffle", "bootstrap"] = "reshuffle",
) -> MonteCarloResult:
    """Resample the closed trades' returns on equity (``pnl / equity before the trade``, compounding in
    closing order). ``reshuffle`` permutes their order: the final return (a product) cannot change, but the
    path and so its drawdown do. ``bootstrap`` draws trades with replacement. Sharpe here is per trade,
    annualised with the number of trades per year of the backtest."""
    if n_sims < 1 or n_sims > 100_000:
        raise ValueError("n_sims must be in 1..100000")
    pnl = np.asarray([t.pnl for t in result.trades], dtype=np.float64)
    if len(pnl) < 2:
        raise ValueError("needs at least 2 closed trades")
    before = result.initial_cash + np.concatenate(([0.0], np.cumsum(pnl)[:-1]))
    if np.any(before <= 0):
        raise ValueError("equity reached zero before the last trade; returns on equity are undefined")
    r = pnl / before
    rng = np.random.default_rng(seed)
    if method == "reshuffle":
        idx = np.argsort(rng.random((n_sims, len(r))), axis=1)
    elif method == "bootstrap":
        idx = rng.integers(0, len(r), size=(n_sims, len(r)))
    else:
        raise ValueError(f"unknown method {method!r}")
    span_years = max((result.ts[-1] - result.ts[0]) / (365.0 * 86_400_000), 1e-9) if len(result.ts) > 1 else 1.0
    per_year = len(r) / span_years
    paths = np.cumprod(1.0 + r[idx], axis=1)
    total, dd, sharpe = _path_stats(paths, per_year)
    actual_path = np.cumprod(1.0 + r)[None, :]
    a_total, a_dd, a_sharpe = _path_stats(actual_path, per_year)
    return _mc_result(
        f"trades_{method}",
        n_sims,
        seed,
        total,
        dd,
        sharpe,
        (a_total[0], a_dd[0], a_sharpe[0]),
        "reshuffling keeps the product of trade returns, so the total-return band is a single value"
        if method == "reshuffle"
        else "",
    )


def monte_carlo_returns(
    result: BacktestResult,
    n_sims: int = 1000,
    seed: int = 0,
    block_days: int = 5,
    periods_per_year: float = 365.0,
) -> MonteCarloResult:
    """Circular block bootstrap of the daily returns: each path concatenates blocks of ``block_days``
    consecutive days starting at uniformly drawn days (wrapping around) up to the original length, keeping
    short-range autocorrelation."""
    if n_sims < 1 or n_sims > 100_000:
        raise ValueError("n_sims must be in 1..100000")
    _, day_eq = daily_equity(result.ts, result.equity, result.initial_cash)
    r = simple_returns(day_eq)
    n = len(r)
    if n < 2:
        raise ValueError("needs at least 2 daily returns")
    if block_days < 1 or block_days > n:
        raise ValueError(f"block_days must be in 1..{n}")
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block_days)
    starts = rng.integers(0, n, size=(n_sims, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block_days)[None, None, :]) % n).reshape(n_sims, -1)[:, :n]
    paths = np.cumprod(1.0 + r[idx], axis=1)
    total, dd, sharpe = _path_stats(paths, periods_per_year)
    a_total, a_dd, a_sharpe = _path_stats(np.cumprod(1.0 + r)[None, :], periods_per_year)
    return _mc_result(
        f"returns_block_bootstrap_{block_days}d", n_sims, seed, total, dd, sharpe, (a_total[0], a_dd[0], a_sharpe[0])
    )


def _mc_result(
    method: str,
    n_sims: int,
    seed: int,
    total: FloatArray,
    dd: FloatArray,
    sharpe: FloatArray,
    actual: tuple[float, float, float],
    note: str = "",
) -> MonteCarloResult:
    bands: dict[str, dict[str, float | None]] = {}
    undefined: dict[str, int] = {}
    for name, values in (("total_return", total), ("max_drawdown", dd), ("sharpe", sharpe)):
        bands[name], undefined[name] = _bands(values)
    act = {
        "total_return": float(actual[0]) if math.isfinite(actual[0]) else None,
        "max_drawdown": float(actual[1]) if math.isfinite(actual[1]) else None,
        "sharpe": float(actual[2]) if math.isfinite(actual[2]) else None,
    }
    return MonteCarloResult(method, n_sims, seed, bands, float(np.mean(total < 0)), act, undefined, note)
