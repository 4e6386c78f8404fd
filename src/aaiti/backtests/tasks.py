"""The worker side of backtests: job parameters, candle preparation and the run itself.

Runs in a job worker process (and in ``aaiti backtest`` on the terminal, which calls the same :func:`execute`),
so it imports neither the database nor the real-time layer. The parent resolves and validates the data before
the job exists; the job's parameters then carry either a *bundled dataset reference* (the worker reads the
package's own file: no copy of the candles in the job row) or the stored candles themselves, packed as
little-endian binary in base64 (exact, and a third of the size of JSON numbers).

A run's output is a plain dict (metrics, downsampled chart series, every trade, the robustness table and the
fingerprint) that the parent stores in one transaction (:func:`aaiti.backtests.service.store_result`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aaiti.backtests.schemas import EngineName, MonteCarloSpec, RunKind, SweepSpec, Timeframe, WalkForwardSpec
from aaiti.core.tasks.worker import JobContext
from aaiti.data import load_bundled
from aaiti.market.resample import between, resample
from aaiti.trading.candles import TIMEFRAME_MS, Candles, FloatArray, IntArray, align
from aaiti.trading.engine import BacktestConfig, BacktestResult, backtest
from aaiti.trading.fingerprint import canonical_json, fingerprint
from aaiti.trading.metrics import (
    Metric,
    compute_metrics,
    downsample,
    drawdown_series,
    metrics_to_dict,
    performance_metrics,
)
from aaiti.trading.portfolio import Trade
from aaiti.trading.robustness import (
    SweepRow,
    expand_grid,
    monte_carlo_returns,
    monte_carlo_trades,
    sort_rows,
    walk_forward,
)
from aaiti.trading.strategies import create_strategy

if TYPE_CHECKING:
    from aaiti.ml.estimators.base import OriginForecasts, TrainingData
    from aaiti.ml.training import LoadedModel

#: Chart series are cut to about this many points (per bucket the first, lowest and highest value are kept).
MAX_CHART_POINTS = 2000
#: Monte Carlo keeps ``n_sims x path length`` floats in memory at once; beyond this the job refuses.
MC_MAX_CELLS = 20_000_000
#: Entries are always market orders decided by the strategy's signal (stops and targets only ever exit).
ENTRY_REASON = "signal"

Progress = Callable[[float, str], None]
Check = Callable[[], None]


# --------------------------------------------------------------------------------------------- job parameters


class PackedCandles(BaseModel):
    """Candles as base64 of little-endian arrays: ``ts`` int64 (open time, ms UTC), ``ohlcv`` float64 rows of
    open, high, low, close, volume (column-major: all opens first)."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(ge=0)
    ts: str
    ohlcv: str

    @classmethod
    def pack(cls, c: Candles) -> PackedCandles:
        table = np.concatenate([c.open, c.high, c.low, c.close, c.volume]).astype("<f8")
        return cls(
            n=len(c),
            ts=base64.b64encode(np.ascontiguousarray(c.ts, dtype="<i8").tobytes()).decode("ascii"),
            ohlcv=base64.b64encode(table.tobytes()).decode("ascii"),
        )

    def unpack(self) -> Candles:
        ts = np.frombuffer(base64.b64decode(self.ts), dtype="<i8").astype(np.int64)
        table = np.frombuffer(base64.b64decode(self.ohlcv), dtype="<f8").astype(np.float64)
        if len(ts) != self.n or len(table) != 5 * self.n:
            raise ValueError("packed candles are truncated")
        o, h, lo, c, v = table.reshape(5, self.n)
        return Candles(ts, o.copy(), h.copy(), lo.copy(), c.copy(), v.copy())


class CandleInput(BaseModel):
    """Where one symbol's candles come from: a bundled dataset (``dataset``) or stored candles (``packed``,
    already at the run's timeframe and range)."""

    model_config = ConfigDict(extra="forbid")
    symbol: str
    source: str
    stored_timeframe: str
    dataset: str | None = None
    packed: PackedCandles | None = None


#: How a model's forecasts are fed to a backtest without seeing the future.
#: ``after_training_window``: the stored version as trained, only from bars whose open time is strictly after the
#: last bar of its training window. ``walk_forward_refit``: the version's algorithm and spec refitted on the run's
#: own past bars every ``refit_every`` bars (expanding or rolling window), each fit forecasting only the bars
#: after it. Bars without a forecast (and feature warm-up bars) get NaN, so the strategy holds no position.
ForecastPolicy = Literal["after_training_window", "walk_forward_refit"]


class ModelRef(BaseModel):
    """The model version that drives a model-driven strategy, and how its forecasts are used (part of the
    config fingerprint: a different version or artefact changes it)."""

    model_config = ConfigDict(extra="forbid")
    model_id: uuid.UUID
    version: int = Field(ge=1)
    algorithm: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training_end_ts: int = Field(description="Open time of the last bar the version was fitted on, epoch ms UTC")
    horizon: int = Field(ge=1)
    policy: ForecastPolicy = "after_training_window"
    refit_every: int | None = Field(None, ge=1, description="walk_forward_refit: bars between refits")
    train_bars: int | None = Field(None, ge=2, description="walk_forward_refit: bars before the first refit")
    window: Literal["expanding", "rolling"] | None = None


class RunSpec(BaseModel):
    """A validated run: what the request asked for, normalised (symbols as tickers, strategy parameters and the
    execution config with every default filled in, range as epoch ms)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: RunKind
    symbols: list[str]
    timeframe: Timeframe
    start_ms: int
    end_ms: int
    strategy: str
    params: dict[str, Any]
    config: BacktestConfig
    engine: EngineName = "auto"
    periods_per_year: float = 365.0
    risk_free_rate: float = 0.0
    sweep: SweepSpec | None = None
    walk_forward: WalkForwardSpec | None = None
    monte_carlo: MonteCarloSpec | None = None
    model: ModelRef | None = None

    def options(self) -> dict[str, Any]:
        """Kind-specific settings and metric options (stored as ``run_options``)."""
        out: dict[str, Any] = {
            "periods_per_year": self.periods_per_year,
            "risk_free_rate": self.risk_free_rate,
            "engine_requested": self.engine,
        }
        for key in ("sweep", "walk_forward", "monte_carlo", "model"):
            spec = getattr(self, key)
            if spec is not None:
                out[key] = spec.model_dump(mode="json")
        return out

    def fingerprint_config(self) -> dict[str, Any]:
        """What the config hash covers: everything that can change the result (not the name, not the requested
        range: the data hash covers the bars actually used)."""
        return {
            "kind": self.kind,
            "symbols": self.symbols,
            "timeframe": self.timeframe,
            "strategy": self.strategy,
            "params": self.params,
            "config": self.config.model_dump(mode="json"),
            **self.options(),
        }


class BacktestJobParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backtest_id: uuid.UUID
    spec: RunSpec
    inputs: list[CandleInput] = Field(min_length=1)
    expected_bars: int = Field(ge=1)
    artifact_file: str | None = Field(
        None, description="Absolute path of the model version's artefact; verified against spec.model.sha256"
    )


# ------------------------------------------------------------------------------------------------------ data


def prepare_candles(candles: Candles, stored_timeframe: str, timeframe: str, start_ms: int, end_ms: int) -> Candles:
    """Bars with open time in ``[start_ms, end_ms)`` at ``timeframe``. Coarser timeframes are aggregated from the
    stored ones (complete buckets only, aligned to the UTC epoch); a finer one raises ``ValueError``."""
    window = between(candles, start_ms, end_ms)
    if stored_timeframe == timeframe:
        return window
    return resample(window, TIMEFRAME_MS[stored_timeframe], timeframe, require_complete=True)


def load_inputs(spec: RunSpec, inputs: Sequence[CandleInput]) -> dict[str, Candles]:
    """Each symbol's candles for the run, aligned on the timestamps they all have."""
    out: dict[str, Candles] = {}
    for item in inputs:
        if item.packed is not None:
            out[item.symbol] = item.packed.unpack()
        elif item.dataset is not None:
            out[item.symbol] = prepare_candles(
                load_bundled(item.dataset), item.stored_timeframe, spec.timeframe, spec.start_ms, spec.end_ms
            )
        else:
            raise ValueError(f"no candles given for {item.symbol}")
    return align(out) if len(out) > 1 else out


# ------------------------------------------------------------------------------------------------- forecasts


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _edge(oc: OriginForecasts) -> FloatArray:
    """Signed edge ``2 * P(up) - 1`` of each origin forecast. Value models: P(up) from the Gaussian implied by
    their central interval (as in the models API's ``confidence``); direction classifiers: their P(up);
    the RL trader: its position, clipped to [-1, 1]."""
    if oc.kind == "direction":
        return 2.0 * np.asarray(oc.prob_up, dtype=np.float64) - 1.0
    if oc.kind == "position":
        return np.clip(np.asarray(oc.position, dtype=np.float64), -1.0, 1.0)
    mean = np.asarray(oc.mean, dtype=np.float64)
    half = (np.asarray(oc.upper, dtype=np.float64) - np.asarray(oc.lower, dtype=np.float64)) / 2.0
    sd = half / NormalDist().inv_cdf(0.5 + float(oc.level) / 2.0)
    safe = np.where(sd > 0, sd, 1.0)
    p_up = np.where(sd > 0, 0.5 * (1.0 + _erf(mean / (safe * math.sqrt(2.0)))), (np.sign(mean) + 1.0) / 2.0)
    return 2.0 * p_up - 1.0


def model_forecasts(
    artifact: bytes, ref: ModelRef, candles: Mapping[str, Candles], check: Check | None = None
) -> tuple[dict[str, FloatArray], dict[str, Any]]:
    """Per-symbol forecast arrays aligned to the bars, under ``ref.policy``.

    The artefact's SHA-256 is verified before it is loaded (``load_model``). ``forecast[i]`` is the edge of the
    model's h-step forecast from bar ``i``'s close, computed with candles ``0..i`` only (causal features and the
    forecaster's ``predict_origins``):

    - ``after_training_window``: the stored version, only for bars opening strictly after
      ``ref.training_end_ts`` (its parameters were fitted on data up to that bar, so an earlier bar would be
      scored by a model that had seen its future);
    - ``walk_forward_refit``: a fresh forecaster of the version's algorithm, parameters and spec, fitted at bars
      ``s = train_bars, train_bars + refit_every, ...`` on the run's bars up to ``s`` (all of them, or the last
      ``train_bars`` when rolling), forecasts bars ``s .. s + refit_every - 1``, as the models' walk-forward
      evaluation does.

    Everything else is NaN (no position). ``check()`` (raises to cancel) runs between refits.
    """
    # Imported here: the models stack is heavy and only model-driven runs need it.
    from aaiti.ml.features import build_training_data
    from aaiti.ml.training import load_model, single_thread

    checkpoint: Check = check or (lambda: None)
    loaded = load_model(artifact, ref.sha256)
    out: dict[str, FloatArray] = {}
    coverage: dict[str, Any] = {}
    refits = 0
    for symbol, c in candles.items():
        f = np.full(len(c), np.nan)
        data = build_training_data(c, loaded.features, loaded.horizon)
        if ref.policy == "walk_forward_refit":
            refits += _refit_forecasts(loaded, ref, data, f, checkpoint)
        else:
            eligible = np.flatnonzero(c.ts > ref.training_end_ts)
            origins = eligible[eligible >= data.first_valid].astype(np.int64)
            if len(origins):
                with single_thread(torch_too=False):
                    oc = loaded.forecaster.predict_origins(data, origins)
                f[origins] = _edge(oc)
        valid = np.flatnonzero(np.isfinite(f))
        coverage[symbol] = {
            "forecast_bars": len(valid),
            "first_forecast_ts": int(c.ts[valid[0]]) if len(valid) else None,
            "last_forecast_ts": int(c.ts[valid[-1]]) if len(valid) else None,
            "warmup_bars": int(data.first_valid),
        }
        out[symbol] = f
    summary = {**ref.model_dump(mode="json"), "kind": loaded.forecaster.kind, "symbols": coverage}
    if ref.policy == "walk_forward_refit":
        summary["refits"] = refits
    return out, summary


def _refit_forecasts(loaded: LoadedModel, ref: ModelRef, data: TrainingData, f: FloatArray, check: Check) -> int:
    """Fill ``f`` under the walk-forward refit policy; returns the number of fits."""
    from aaiti.ml.estimators.base import TrainingData
    from aaiti.ml.estimators.registry import create, resolve, validate_params
    from aaiti.ml.training import single_thread

    assert ref.refit_every is not None
    assert ref.train_bars is not None
    spec = loaded.meta["spec"]
    info = resolve(loaded.algorithm)
    n = len(data)
    fits = 0
    with single_thread(torch_too=info.family == "neural"):
        for s in range(ref.train_bars - 1, n, ref.refit_every):
            check()
            stop = s + 1
            lo = max(0, stop - ref.train_bars) if ref.window == "rolling" else 0
            head = data.head(stop)
            train = (
                head
                if lo == 0
                else TrainingData(
                    candles=head.candles.slice(lo, stop),
                    features=head.features[lo:stop],
                    feature_names=head.feature_names,
                    horizon=head.horizon,
                    first_valid=max(0, head.first_valid - lo),
                    indicator_columns=head.indicator_columns,
                )
            )
            origins = np.arange(max(s, data.first_valid), min(n, s + ref.refit_every), dtype=np.int64)
            if len(origins) == 0:
                continue
            params = validate_params(
                info.id, spec["params"], n_rows=max(1, len(train) - train.first_valid), horizon=data.horizon
            )
            model = create(
                info.id, params, horizon=data.horizon, level=float(spec["interval_level"]), seed=int(spec["seed"])
            ).fit(train)
            fits += 1
            f[origins] = _edge(model.predict_origins(data, origins))
    return fits


# ------------------------------------------------------------------------------------------------ code version


def source_hash(root: Path) -> str:
    """SHA-256 over every ``*.py`` file under ``root`` (relative path and bytes, in path order)."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@cache
def code_version() -> str:
    """``<package version>+src.<hash>``: the hash covers every source file of the trading kernel, so a changed
    fill rule or metric changes the fingerprint even without a version bump (and without git)."""
    try:
        version = metadata.version("aaiti")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}+src.{source_hash(Path(__file__).resolve().parents[1] / 'trading')[:16]}"


# ---------------------------------------------------------------------------------------------------- running


def _series(ts: IntArray, values: FloatArray) -> dict[str, list[Any]]:
    t, v = downsample(ts, values, MAX_CHART_POINTS)
    return {"ts": [int(x) for x in t.tolist()], "values": [float(x) for x in v.tolist()]}


def _drawdown(ts: IntArray, equity: FloatArray, initial: float) -> dict[str, list[Any]]:
    # The initial cash is the first peak, as in the max-drawdown metric.
    dd = drawdown_series(np.concatenate(([initial], equity)))[1:]
    return _series(ts, dd)


def _trade_dicts(trades: Sequence[Trade], ts: IntArray) -> list[dict[str, Any]]:
    """Trades with bar indexes of the whole run (walk-forward windows report theirs relative to the window)."""
    out = []
    for t in trades:
        d = t.to_dict()
        d["entry_bar"] = int(np.searchsorted(ts, t.entry_ts))
        d["exit_bar"] = int(np.searchsorted(ts, t.exit_ts))
        d["entry_reason"] = ENTRY_REASON
        out.append(d)
    return out


def _trades_summary(trades: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(trades),
        "by_exit_reason": dict(sorted(Counter(t["exit_reason"] for t in trades).items())),
        "by_side": dict(sorted(Counter(t["side"] for t in trades).items())),
        "by_symbol": dict(sorted(Counter(t["symbol"] for t in trades).items())),
        "fees": math.fsum(float(t["fees"]) for t in trades),
        "pnl": math.fsum(float(t["pnl"]) for t in trades),
    }


def compact_metrics(metrics: Mapping[str, Metric]) -> dict[str, dict[str, Any]]:
    """Values, and reasons only where a value is undefined (tables of many runs stay small)."""
    return {
        "values": {k: m.value for k, m in metrics.items()},
        "reasons": {k: m.reason for k, m in metrics.items() if m.value is None},
    }


def _metrics(result: BacktestResult, spec: RunSpec) -> dict[str, Metric]:
    return compute_metrics(result, periods_per_year=spec.periods_per_year, risk_free=spec.risk_free_rate)


def _run_once(
    cmap: Mapping[str, Candles],
    spec: RunSpec,
    params: Mapping[str, Any],
    forecasts: Mapping[str, FloatArray] | None = None,
) -> BacktestResult:
    return backtest(
        dict(cmap),
        create_strategy(spec.strategy, params),
        spec.config,
        engine=spec.engine,
        forecasts=dict(forecasts) if forecasts is not None else None,
    )


def _sweep(
    cmap: Mapping[str, Candles], spec: RunSpec, progress: Progress, check: Check
) -> tuple[BacktestResult, dict[str, Any]]:
    assert spec.sweep is not None
    combos = expand_grid(spec.sweep.grid, spec.params)
    rows: list[SweepRow] = []
    for i, params in enumerate(combos):
        check()
        try:
            strategy = create_strategy(spec.strategy, params)
        except ValueError as exc:
            rows.append(SweepRow(params, None, str(exc).splitlines()[-1][:300]))
        else:
            result = backtest(dict(cmap), strategy, spec.config, engine=spec.engine)
            rows.append(SweepRow(params, _metrics(result, spec)))
        progress(0.05 + 0.85 * (i + 1) / len(combos), f"parameter set {i + 1}/{len(combos)}")
    ranked = sort_rows(rows, spec.sweep.metric, spec.sweep.descending)
    best = ranked[0]
    if best.metrics is None:
        raise ValueError(f"no parameter set of the grid could run: {best.error}")
    check()
    main = _run_once(cmap, spec, best.params)
    table = {
        "type": "sweep",
        "metric": spec.sweep.metric,
        "descending": spec.sweep.descending,
        "grid": spec.sweep.grid,
        "best_params": best.params,
        "errors": sum(1 for r in rows if r.error is not None),
        "rows": [
            {
                "params": r.params,
                "metrics": None if r.metrics is None else compact_metrics(r.metrics),
                "error": r.error,
            }
            for r in rows
        ],
    }
    return main, table


def _window_benchmark(cmap: Mapping[str, Candles], spec: RunSpec, a: int, b: int) -> FloatArray:
    sliced = {s: c.slice(a, b) for s, c in cmap.items()}
    return backtest(sliced, create_strategy("buy_and_hold", {}), spec.config).benchmark


def _walk_forward(
    cmap: Mapping[str, Candles], spec: RunSpec, progress: Progress, check: Check
) -> tuple[dict[str, Any], dict[str, Any]]:
    wf_spec = spec.walk_forward
    assert wf_spec is not None
    progress(0.1, "walk-forward: optimising each window in-sample")

    def after_window(done: int, total: int) -> None:
        check()
        progress(0.1 + 0.7 * done / total, f"walk-forward: window {done}/{total} optimised and tested")

    wf = walk_forward(
        dict(cmap),
        spec.strategy,
        wf_spec.grid,
        spec.config,
        train_bars=wf_spec.train_bars,
        test_bars=wf_spec.test_bars,
        step_bars=wf_spec.step_bars,
        anchored=wf_spec.anchored,
        metric=wf_spec.metric,
        maximize=wf_spec.maximize,
        base_params=spec.params,
        periods_per_year=spec.periods_per_year,
        on_window=after_window,
    )
    progress(0.8, "walk-forward: stitching the out-of-sample windows")
    initial = spec.config.initial_cash
    level = initial
    bench_parts: list[FloatArray] = []
    for w in wf.windows:
        growth = _window_benchmark(cmap, spec, w.test_start, w.test_end) / initial
        bench_parts.append(level * growth)
        level = float(level * growth[-1])
    bench = np.concatenate(bench_parts)
    # The stitched curve has no fill log of its own; fees are in the trades.
    metrics = performance_metrics(
        wf.ts,
        wf.equity,
        initial,
        benchmark=bench,
        trades=wf.trades,
        periods_per_year=spec.periods_per_year,
        risk_free=spec.risk_free_rate,
    )
    full_ts = next(iter(cmap.values())).ts
    main = {
        "engine": "vectorized" if not spec.config.risk.active else "event",
        "ts": wf.ts,
        "equity": wf.equity,
        "benchmark": bench,
        "metrics": metrics,
        "trades": _trade_dicts(wf.trades, full_ts),
    }
    table = {
        "type": "walk_forward",
        "metric": wf_spec.metric,
        "maximize": wf_spec.maximize,
        "anchored": wf_spec.anchored,
        "train_bars": wf_spec.train_bars,
        "test_bars": wf_spec.test_bars,
        "step_bars": wf_spec.step_bars or wf_spec.test_bars,
        "grid": wf_spec.grid,
        "windows": [
            {
                "train": [w.train_start, w.train_end],
                "test": [w.test_start, w.test_end],
                "train_start_ts": w.train_start_ts,
                "test_start_ts": w.test_start_ts,
                "test_end_ts": w.test_end_ts,
                "best_params": w.best_params,
                "in_sample": compact_metrics(w.in_sample),
                "out_of_sample": compact_metrics(w.out_of_sample),
            }
            for w in wf.windows
        ],
    }
    return main, table


def _monte_carlo(result: BacktestResult, spec: RunSpec) -> dict[str, Any]:
    mc = spec.monte_carlo
    assert mc is not None
    if mc.method == "return_block_bootstrap":
        days = len(np.unique(result.ts // 86_400_000))
        if mc.n_sims * days > MC_MAX_CELLS:
            raise ValueError(f"{mc.n_sims} simulations of {days} days exceed {MC_MAX_CELLS:,} cells; use fewer")
        out = monte_carlo_returns(
            result, n_sims=mc.n_sims, seed=mc.seed, block_days=mc.block_days, periods_per_year=spec.periods_per_year
        )
    else:
        n_trades = len(result.trade_log)
        if mc.n_sims * n_trades > MC_MAX_CELLS:
            raise ValueError(f"{mc.n_sims} simulations of {n_trades} trades exceed {MC_MAX_CELLS:,} cells; use fewer")
        out = monte_carlo_trades(
            result,
            n_sims=mc.n_sims,
            seed=mc.seed,
            method="reshuffle" if mc.method == "trade_reshuffle" else "bootstrap",
        )
    return {"type": "monte_carlo", **out.to_dict()}


def execute(
    spec: RunSpec,
    candles: Mapping[str, Candles],
    progress: Progress | None = None,
    check: Check | None = None,
    forecasts: Mapping[str, FloatArray] | None = None,
) -> dict[str, Any]:
    """Run ``spec`` on ``candles`` (``{symbol: Candles}``, aligned) and return the storable output.

    ``forecasts`` (``{symbol: array aligned to the bars}``) feed a model-driven strategy (single and Monte Carlo
    runs only); see :func:`model_forecasts` for how they are made without look-ahead.

    Deterministic: the same spec on the same candles with the same code gives the same output and fingerprint.
    ``progress(fraction, message)`` and ``check()`` (raises to cancel) are called between phases and, for
    sweeps, between parameter sets; for walk-forward runs, after each window.
    """
    report: Progress = progress or (lambda _f, _m: None)
    checkpoint: Check = check or (lambda: None)
    cmap = {s: candles[s] for s in spec.symbols}
    n_bars = len(next(iter(cmap.values())))
    if n_bars == 0:
        raise ValueError("no bars in the requested range")
    report(0.05, f"running {spec.kind} on {n_bars} bars")
    robustness: dict[str, Any] | None = None
    if spec.kind == "walk_forward":
        main, robustness = _walk_forward(cmap, spec, report, checkpoint)
        engine = str(main["engine"])
        ts, equity, bench = main["ts"], main["equity"], main["benchmark"]
        metrics: dict[str, Metric] = main["metrics"]
        trades: list[dict[str, Any]] = main["trades"]
    else:
        if spec.kind == "sweep":
            result, robustness = _sweep(cmap, spec, report, checkpoint)
        else:
            result = _run_once(cmap, spec, spec.params, forecasts)
        checkpoint()
        report(0.9, "computing metrics")
        engine = result.engine
        ts, equity, bench = result.ts, result.equity, result.benchmark
        metrics = _metrics(result, spec)
        trades = _trade_dicts(result.trades, result.ts)
        if spec.kind == "monte_carlo":
            report(0.92, "Monte Carlo simulations")
            robustness = _monte_carlo(result, spec)
    checkpoint()
    initial = spec.config.initial_cash
    fp = fingerprint(cmap, spec.fingerprint_config(), trades, code_version(), symbols=spec.symbols)
    parts: dict[str, Any] = {**fp.to_dict(), "code_version": code_version()}
    parts["results"] = (
        hashlib.sha256(canonical_json(robustness).encode("utf-8")).hexdigest() if robustness is not None else None
    )
    report(0.97, "done; storing the result")
    return {
        "engine": engine,
        "bars": n_bars,
        "first_ts": int(next(iter(cmap.values())).ts[0]),
        "last_ts": int(next(iter(cmap.values())).ts[-1]),
        "initial_cash": initial,
        "final_equity": float(equity[-1]) if len(equity) else initial,
        "metrics": metrics_to_dict(metrics),
        "equity": _series(ts, equity),
        "drawdown": _drawdown(ts, equity, initial),
        "benchmark": _series(ts, bench) if bench is not None and len(bench) == len(ts) else None,
        "trades": trades,
        "trades_summary": _trades_summary(trades),
        "robustness": robustness,
        "fingerprint": parts,
    }


def run_backtest_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job entry point (``aaiti.backtests.tasks:run_backtest_job``)."""
    job = BacktestJobParams.model_validate(params)
    ctx.report(0.01, "loading candles", force=True)
    candles = load_inputs(job.spec, job.inputs)
    bars = len(next(iter(candles.values())))
    if bars != job.expected_bars:
        raise ValueError(f"the data changed since the run was accepted: {bars} bars, expected {job.expected_bars}")
    ctx.check_cancelled()
    forecasts: dict[str, FloatArray] | None = None
    summary: dict[str, Any] | None = None
    if job.spec.model is not None:
        if job.artifact_file is None:
            raise ValueError("a model-driven run needs the model's artefact")
        ctx.report(0.02, f"forecasting with model {job.spec.model.model_id} v{job.spec.model.version}", force=True)
        forecasts, summary = model_forecasts(
            Path(job.artifact_file).read_bytes(), job.spec.model, candles, check=ctx.check_cancelled
        )
        ctx.check_cancelled()
    out = execute(
        job.spec, candles, progress=lambda f, m: ctx.report(f, m), check=ctx.check_cancelled, forecasts=forecasts
    )
    out["forecast"] = summary
    out["backtest_id"] = str(job.backtest_id)
    ctx.report(1.0, "done", force=True)
    return out
