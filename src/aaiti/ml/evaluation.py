"""Out-of-sample scoring: held-out tail or walk-forward, never in-sample.

Protocol. The last ``test_fraction`` of the forecast origins are test origins. ``holdout``: one model is
fitted on the bars up to the first test origin and forecasts every test origin with its parameters fixed,
each forecast using the data up to its own origin only (a rolling origin with fixed parameters).
``walk_forward``: the test origins are cut into ``folds`` consecutive blocks; before each block the model
is refitted on everything up to the block's first origin. Training rows never have targets beyond their
window (the supervised models drop the last ``h`` rows of a window).

Metrics are computed in the target's units (price or h-bar log return) on the same origins for the model
and for the naive (no-change) forecast, which is always reported beside it. Every value is a finite float
or ``None`` with its reason in ``null_reasons``:

- MAE, RMSE, MAPE (percent; undefined for a log-return target, which crosses zero), R² (against the test
  mean), MASE (MAE over the training window's mean absolute h-bar naive error), Theil's U2 (RMSE over the
  naive RMSE), ``rmse_skill`` = 1 - U2;
- direction: accuracy, and precision / recall / F1 of "up", over origins where both the actual move and
  the forecast are non-zero (the naive forecast calls no direction, so its direction metrics are null;
  ``up_rate`` = share of up moves, the accuracy of always saying "up");
- intervals: coverage of the central ``level`` interval and its mean width;
- direction classifiers: Brier score of ``prob_up``; policies (the RL trader): return, Sharpe, drawdown,
  exposure and trade count against buy-and-hold, net of fees.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aaiti.ml.estimators.base import FitContext, FloatArray, Forecaster, IntArray, OriginForecasts, TrainingData
from aaiti.ml.estimators.baselines import NaiveForecaster
from aaiti.ml.estimators.params import NaiveParams

Target = Literal["price", "log_return"]
MIN_TEST_ORIGINS = 10


class EvaluationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["holdout", "walk_forward"] = Field(
        "holdout", description="holdout = one fit, fixed parameters on the tail; walk_forward = refit per fold."
    )
    test_fraction: float = Field(0.2, ge=0.05, le=0.5, description="Share of forecast origins held out.")
    folds: int = Field(3, ge=2, le=10, description="Refits for walk_forward.")


@dataclass
class Fold:
    train_stop: int
    origins: IntArray
    model: Forecaster
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    folds: list[Fold]

    @property
    def final_model(self) -> Forecaster:
        return self.folds[-1].model


def scoring_origins(n_bars: int, horizon: int, first_usable: int, config: EvaluationConfig) -> IntArray:
    """Origins of the test forecasts: the last ``test_fraction`` of usable origins, each with a known target."""
    last = n_bars - 1 - horizon
    usable = last - first_usable + 1
    n_test = max(MIN_TEST_ORIGINS, round(usable * config.test_fraction))
    if usable < n_test * 2:
        raise ValueError(
            f"not enough bars to hold out {n_test} test forecasts at horizon {horizon} ({usable} usable origins)"
        )
    return np.arange(last - n_test + 1, last + 1, dtype=np.int64)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class _Metrics:
    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}
        self.reasons: dict[str, str] = {}

    def put(self, name: str, value: float | None, reason: str = "not finite") -> None:
        v = _finite(value) if value is not None else None
        self.values[name] = v
        if v is None:
            self.reasons[name] = reason


def _to_target(logret: FloatArray, origin_close: FloatArray, target: Target) -> FloatArray:
    return origin_close * np.exp(logret) if target == "price" else logret


def value_metrics(
    actual: FloatArray,
    pred: FloatArray,
    *,
    naive: FloatArray,
    mase_scale: FloatArray,
    target: Target,
) -> _Metrics:
    m = _Metrics()
    err = pred - actual
    m.put("mae", float(np.mean(np.abs(err))))
    m.put("rmse", float(np.sqrt(np.mean(err**2))))
    if target == "log_return":
        m.put("mape", None, "undefined for a log-return target (it crosses zero)")
    elif np.any(np.abs(actual) < 1e-12):
        m.put("mape", None, "undefined: an actual value is zero")
    else:
        m.put("mape", float(np.mean(np.abs(err / actual)) * 100.0))
    sst = float(np.sum((actual - actual.mean()) ** 2))
    if sst > 0:
        m.put("r2", 1.0 - float(np.sum(err**2)) / sst)
    else:
        m.put("r2", None, "undefined: the test targets do not vary")
    if np.all(mase_scale > 0):
        m.put("mase", float(np.mean(np.abs(err) / mase_scale)))
    else:
        m.put("mase", None, "undefined: the training window's naive error is zero")
    naive_rmse = float(np.sqrt(np.mean((naive - actual) ** 2)))
    if naive_rmse > 0:
        u = float(np.sqrt(np.mean(err**2))) / naive_rmse
        m.put("theil_u", u)
        m.put("rmse_skill", 1.0 - u)
    else:
        m.put("theil_u", None, "undefined: the naive forecast is exact on the test set")
        m.put("rmse_skill", None, "undefined: the naive forecast is exact on the test set")
    return m


def direction_metrics(m: _Metrics, actual_move: FloatArray, predicted_move: FloatArray, who: str) -> None:
    """Accuracy and precision/recall/F1 of the "up" class, where both moves are non-zero."""
    mask = (actual_move != 0) & (predicted_move != 0)
    names = ("directional_accuracy", "precision_up", "recall_up", "f1_up")
    if not np.any(mask):
        for name in names:
            m.put(name, None, f"{who} makes no directional call on the test set")
        return
    a_up = actual_move[mask] > 0
    p_up = predicted_move[mask] > 0
    m.put("directional_accuracy", float(np.mean(a_up == p_up)))
    tp = float(np.sum(a_up & p_up))
    fp = float(np.sum(~a_up & p_up))
    fn = float(np.sum(a_up & ~p_up))
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    m.put("precision_up", precision, f"{who} never forecast an up move")
    m.put("recall_up", recall, "no up move in the test set")
    if precision is None or recall is None:
        m.put("f1_up", None, "precision or recall is undefined")
    elif precision + recall == 0:
        m.put("f1_up", 0.0)
    else:
        m.put("f1_up", 2 * precision * recall / (precision + recall))
    m.values["n_direction"] = float(np.sum(mask))


def interval_metrics(m: _Metrics, actual: FloatArray, lower: FloatArray | None, upper: FloatArray | None) -> None:
    if lower is None or upper is None:
        m.put("coverage", None, "no prediction interval")
        m.put("interval_width", None, "no prediction interval")
        return
    m.put("coverage", float(np.mean((actual >= lower) & (actual <= upper))))
    m.put("interval_width", float(np.mean(upper - lower)))


def policy_metrics(
    positions: FloatArray, next_simple_returns: FloatArray, *, fee_bps: float, bars_per_year: float
) -> _Metrics:
    """P&L of holding ``positions[i]`` over the bar after origin ``i``, net of fees on position changes."""
    m = _Metrics()
    prev = np.concatenate([[0.0], positions[:-1]])
    costs = np.abs(positions - prev) * fee_bps / 1e4
    strat = positions * next_simple_returns - costs
    equity = np.cumprod(1.0 + strat)
    bh = np.cumprod(1.0 + next_simple_returns)
    m.put("total_return", float(equity[-1] - 1.0))
    m.put("buy_hold_return", float(bh[-1] - 1.0))
    sd = float(np.std(strat, ddof=1)) if len(strat) > 1 else 0.0
    if sd > 0:
        m.put("sharpe", float(np.mean(strat)) / sd * math.sqrt(bars_per_year))
    else:
        m.put("sharpe", None, "undefined: the policy's returns do not vary (it stayed flat)")
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))
    m.put("max_drawdown", float(np.max(1.0 - np.concatenate([[1.0], equity]) / peak)))
    m.put("exposure", float(np.mean(np.abs(positions))))
    m.values["trades"] = float(np.sum(positions != prev))
    in_market = positions != 0
    if np.any(in_market):
        m.put("hit_rate", float(np.mean(positions[in_market] * next_simple_returns[in_market] > 0)))
    else:
        m.put("hit_rate", None, "the policy never held a position")
    return m


def _mase_scale(train: TrainingData, horizon: int, target: Target) -> float:
    close = train.candles.close
    if len(close) <= horizon:
        return float("nan")
    if target == "price":
        return float(np.mean(np.abs(close[horizon:] - close[:-horizon])))
    return float(np.mean(np.abs(np.log(close[horizon:] / close[:-horizon]))))


def _score(
    data: TrainingData,
    origins: IntArray,
    model_fc: OriginForecasts,
    naive_fc: OriginForecasts,
    mase_scale: FloatArray,
    *,
    target: Target,
    fee_bps: float,
    bars_per_year: float,
) -> dict[str, Any]:
    h = data.horizon
    close = data.candles.close
    origin_close = close[origins]
    actual_ret = np.log(close[origins + h] / origin_close)
    actual = _to_target(actual_ret, origin_close, target)
    assert naive_fc.mean is not None
    assert naive_fc.lower is not None
    assert naive_fc.upper is not None
    naive_pred = _to_target(naive_fc.mean, origin_close, target)

    model = _Metrics()
    if model_fc.kind == "value":
        assert model_fc.mean is not None
        pred = _to_target(model_fc.mean, origin_close, target)
        model = value_metrics(actual, pred, naive=naive_pred, mase_scale=mase_scale, target=target)
        direction_metrics(model, actual_ret, model_fc.mean, "the model")
        lower = _to_target(model_fc.lower, origin_close, target) if model_fc.lower is not None else None
        upper = _to_target(model_fc.upper, origin_close, target) if model_fc.upper is not None else None
        interval_metrics(model, actual, lower, upper)
    else:
        reason = f"a {model_fc.kind} model forecasts no value"
        for name in ("mae", "rmse", "mape", "r2", "mase", "theil_u", "rmse_skill", "coverage", "interval_width"):
            model.put(name, None, reason)
        if model_fc.kind == "direction":
            assert model_fc.prob_up is not None
            direction_metrics(model, actual_ret, model_fc.prob_up - 0.5, "the model")
            up = (actual_ret > 0).astype(np.float64)
            model.put("brier", float(np.mean((model_fc.prob_up - up) ** 2)))
        else:
            assert model_fc.position is not None
            direction_metrics(model, actual_ret, model_fc.position, "the policy")

    naive = value_metrics(actual, naive_pred, naive=naive_pred, mase_scale=mase_scale, target=target)
    direction_metrics(naive, actual_ret, naive_fc.mean, "the naive forecast")
    interval_metrics(
        naive,
        actual,
        _to_target(naive_fc.lower, origin_close, target),
        _to_target(naive_fc.upper, origin_close, target),
    )
    out: dict[str, Any] = {
        "n_test": len(origins),
        "up_rate": float(np.mean(actual_ret > 0)),
        "model": model.values,
        "naive": naive.values,
        "null_reasons": {
            **{f"model.{k}": v for k, v in model.reasons.items()},
            **{f"naive.{k}": v for k, v in naive.reasons.items()},
        },
    }
    if model_fc.kind == "position":
        assert model_fc.position is not None
        if h != 1:
            raise ValueError("a policy is scored one bar ahead (horizon 1)")
        simple = close[origins + 1] / origin_close - 1.0
        pol = policy_metrics(model_fc.position, simple, fee_bps=fee_bps, bars_per_year=bars_per_year)
        out["policy"] = pol.values
        out["null_reasons"].update({f"policy.{k}": v for k, v in pol.reasons.items()})
    return out


def evaluate(
    make_model: Callable[[], Forecaster],
    data: TrainingData,
    config: EvaluationConfig,
    *,
    target: Target,
    level: float,
    ctx: FitContext | None = None,
    fee_bps: float = 0.0,
    bars_per_year: float = 365.0,
) -> EvaluationResult:
    """Fit and score out of sample; returns the metrics and the fitted model of every fold."""
    ctx = ctx or FitContext()
    h = data.horizon
    origins = scoring_origins(len(data), h, data.first_valid, config)
    blocks = [origins] if config.method == "holdout" else np.array_split(origins, config.folds)
    folds: list[Fold] = []
    model_parts: list[OriginForecasts] = []
    naive_parts: list[OriginForecasts] = []
    scales: list[FloatArray] = []
    for i, block in enumerate(blocks):
        ctx.checkpoint()
        train_stop = int(block[0]) + 1
        train = data.head(train_stop)
        span = ctx.sub(i / len(blocks), (i + 1) / len(blocks))
        span.progress(0.0, f"fold {i + 1}/{len(blocks)}: fitting on {train_stop} bars")
        model = make_model().fit(train, span.sub(0.0, 0.9))
        ctx.checkpoint()
        naive = NaiveForecaster(NaiveParams(), horizon=h, level=level).fit(train)
        fc = model.predict_origins(data, block)
        nf = naive.predict_origins(data, block)
        scale = np.full(len(block), _mase_scale(train, h, target))
        fold = Fold(train_stop=train_stop, origins=block, model=model)
        fold.metrics = _score(data, block, fc, nf, scale, target=target, fee_bps=fee_bps, bars_per_year=bars_per_year)
        folds.append(fold)
        model_parts.append(fc)
        naive_parts.append(nf)
        scales.append(scale)
        span.progress(1.0, f"fold {i + 1}/{len(blocks)} scored")
    model_all = _concat(model_parts)
    naive_all = _concat(naive_parts)
    metrics = _score(
        data,
        origins,
        model_all,
        naive_all,
        np.concatenate(scales),
        target=target,
        fee_bps=fee_bps,
        bars_per_year=bars_per_year,
    )
    metrics.update(
        {
            "method": config.method,
            "target": target,
            "horizon": h,
            "level": level,
            "first_test_origin": int(origins[0]),
            "folds": [
                {
                    "train_stop": f.train_stop,
                    "first_origin": int(f.origins[0]),
                    "last_origin": int(f.origins[-1]),
                    "n_test": len(f.origins),
                    "model": f.metrics["model"],
                    "naive": f.metrics["naive"],
                }
                for f in folds
            ]
            if config.method == "walk_forward"
            else [],
        }
    )
    return EvaluationResult(metrics=metrics, folds=folds)


def _concat(parts: list[OriginForecasts]) -> OriginForecasts:
    def cat(name: str) -> FloatArray | None:
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    first = parts[0]
    return OriginForecasts(
        kind=first.kind,
        origins=np.concatenate([p.origins for p in parts]),
        horizon=first.horizon,
        level=first.level,
        mean=cat("mean"),
        lower=cat("lower"),
        upper=cat("upper"),
        prob_up=cat("prob_up"),
        position=cat("position"),
    )
