"""The pure training job and prediction entry points (no database, no HTTP, no clock).

``train(spec, report, should_cancel)`` runs in a worker process: it loads the candles named or carried by
the spec, builds causal features, fits and scores the model out of sample (see ``evaluation.py``), and
returns the metrics, the artefact bytes with their SHA-256, the training window and a fingerprint of the
data. ``predict(artifact, sha256, candles, horizon)`` verifies and loads an artefact and forecasts from the
last candle.

Threads: one BLAS/OpenMP thread (threadpoolctl) and one torch thread while a job runs; the job runner
should also start workers with ``OMP_NUM_THREADS=1`` so libraries that read it at import agree.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aaiti.core.errors import Invalid
from aaiti.ml.artifacts import BUNDLE_FORMAT, pack_bundle, sha256_hex, unpack_bundle
from aaiti.ml.estimators.base import (
    ArtifactPayload,
    Cancelled,
    FitContext,
    FitFailed,
    Forecast,
    Forecaster,
    TrainingData,
    z_value,
)
from aaiti.ml.estimators.registry import create, resolve, validate_params
from aaiti.ml.evaluation import EvaluationConfig, evaluate, scoring_origins
from aaiti.ml.features import FeatureConfig, build_training_data
from aaiti.trading.candles import Candles

MAX_BARS = 200_000
MIN_BARS = 60
ReportFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

__all__ = [
    "MAX_BARS",
    "Cancelled",
    "CandlesPayload",
    "LoadedModel",
    "TrainSpec",
    "candles_fingerprint",
    "check_spec",
    "load_model",
    "predict",
    "train",
]


class CandlesPayload(BaseModel):
    """Columnar candles as JSON lists (``ts`` = open time, epoch ms UTC, strictly increasing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]

    @model_validator(mode="after")
    def _shape(self) -> CandlesPayload:
        n = len(self.ts)
        if any(len(getattr(self, c)) != n for c in ("open", "high", "low", "close", "volume")):
            raise ValueError("candle columns differ in length")
        if n > MAX_BARS:
            raise ValueError(f"at most {MAX_BARS} candles")
        if any(b <= a for a, b in zip(self.ts, self.ts[1:], strict=False)):
            raise ValueError("ts must be strictly increasing")
        if any(not (math.isfinite(c) and c > 0) for c in self.close):
            raise ValueError("closes must be positive and finite")
        return self

    def to_candles(self) -> Candles:
        return Candles.from_arrays(self.ts, self.open, self.high, self.low, self.close, self.volume)


class TrainSpec(BaseModel):
    """What to train. Exactly one of ``dataset`` (a bundled dataset name) or ``candles``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = Field(description="Algorithm id or a seed alias.")
    params: dict[str, Any] = Field(default_factory=dict, description="The algorithm's parameters.")
    target: Literal["price", "log_return"] = Field("price", description="Scored target at horizon h.")
    horizon: int = Field(1, ge=1, le=500, description="Bars ahead (h).")
    interval_level: float = Field(0.9, ge=0.5, le=0.99, description="Central prediction-interval level.")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    dataset: str | None = Field(None, description="Bundled dataset name, e.g. BTC-USD_1d.")
    candles: CandlesPayload | None = None
    start_ts: int | None = Field(None, description="First candle open time to use (inclusive, epoch ms).")
    end_ts: int | None = Field(None, description="Last candle open time to use (inclusive, epoch ms).")

    @model_validator(mode="after")
    def _source(self) -> TrainSpec:
        if (self.dataset is None) == (self.candles is None):
            raise ValueError("give exactly one of dataset or candles")
        if self.start_ts is not None and self.end_ts is not None and self.end_ts < self.start_ts:
            raise ValueError("end_ts is before start_ts")
        return self

    def public(self) -> dict[str, Any]:
        """The spec without the candle arrays (what gets stored with the model)."""
        return self.model_dump(mode="json", exclude={"candles"})


def _invalid(exc: ValidationError, what: str) -> Invalid:
    errors = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(e['loc']) or what}: {e['msg']}" for e in errors)
    return Invalid(f"invalid {what}: {detail}", extra={"errors": errors})


def _parse_spec(spec: Mapping[str, Any] | TrainSpec) -> TrainSpec:
    if isinstance(spec, TrainSpec):
        return spec
    try:
        return TrainSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise _invalid(exc, "training spec") from exc


def _load_candles(spec: TrainSpec) -> Candles:
    if spec.dataset is not None:
        from aaiti.data import load_bundled

        try:
            candles = load_bundled(spec.dataset)
        except KeyError as exc:
            raise Invalid(f"unknown dataset {spec.dataset!r}") from exc
    else:
        assert spec.candles is not None
        candles = spec.candles.to_candles()
    lo = 0 if spec.start_ts is None else int(np.searchsorted(candles.ts, spec.start_ts, side="left"))
    hi = len(candles) if spec.end_ts is None else int(np.searchsorted(candles.ts, spec.end_ts, side="right"))
    candles = candles.slice(lo, hi)
    if len(candles) > MAX_BARS:
        raise Invalid(f"the window holds {len(candles)} candles; at most {MAX_BARS} can be trained on")
    if len(candles) < MIN_BARS:
        raise Invalid(f"the window holds {len(candles)} candles; at least {MIN_BARS} are needed")
    return candles


def candles_fingerprint(candles: Candles) -> str:
    """SHA-256 of the candles' canonical bytes (little-endian int64 ts, float64 OHLCV)."""
    h = hashlib.sha256(f"aaiti-candles/1:{len(candles)}:".encode())
    h.update(np.ascontiguousarray(candles.ts, dtype="<i8").tobytes())
    for col in (candles.open, candles.high, candles.low, candles.close, candles.volume):
        h.update(np.ascontiguousarray(col, dtype="<f8").tobytes())
    return h.hexdigest()


def _bar_ms(candles: Candles) -> int:
    return int(np.median(np.diff(candles.ts))) if len(candles) > 1 else 0


@dataclass(frozen=True)
class _Prepared:
    spec: TrainSpec
    algorithm: str
    params: BaseModel
    candles: Candles
    data: TrainingData


def _prepare(spec: Mapping[str, Any] | TrainSpec) -> _Prepared:
    s = _parse_spec(spec)
    info = resolve(s.algorithm)
    if info.kind == "position" and s.horizon != 1:
        raise Invalid(f"{info.id} decides one bar at a time; use horizon 1")
    candles = _load_candles(s)
    try:
        data = build_training_data(candles, s.features, s.horizon)
        origins = scoring_origins(len(data), s.horizon, data.first_valid, s.evaluation)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    # Rows the first fit sees: bars after the warm-up up to the first test origin.
    n_rows = int(origins[0]) + 1 - data.first_valid
    params = validate_params(info.id, s.params, n_rows=n_rows, horizon=s.horizon)
    return _Prepared(s, info.id, params, candles, data)


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a spec against its data before queueing a job (raises ``Invalid`` -> HTTP 422).

    Returns the normalised spec (without candle arrays) with the validated algorithm id and parameters.
    """
    prepared = _prepare(spec)
    out = prepared.spec.public()
    out["algorithm"] = prepared.algorithm
    out["params"] = prepared.params.model_dump(mode="json")
    return out


@contextmanager
def single_thread(torch_too: bool) -> Iterator[None]:
    """One BLAS/OpenMP thread (and one torch thread) for the duration of a job; restored afterwards."""
    from threadpoolctl import threadpool_limits

    torch_mod = sys.modules.get("torch")
    if torch_too and torch_mod is None:
        import torch as torch_mod
    previous = torch_mod.get_num_threads() if torch_mod is not None else None
    if torch_mod is not None:
        torch_mod.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch_mod is not None and previous is not None:
            torch_mod.set_num_threads(previous)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("numpy", "statsmodels", "statsforecast", "scikit-learn", "torch", "ta-lib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _forecast_dict(fc: Forecast, data: TrainingData, target: str, model_horizon: int) -> dict[str, Any]:
    """JSON-ready forecast from the last candle of ``data`` (the origin).

    ``steps[i].ts`` is the open time of the bar whose close step ``k`` forecasts (origin open time + k bars);
    prices are quantiles-preserving transforms of the log-return forecast (``price = origin_close * exp``).
    ``prediction_value`` is the last step in the target's units (a probability of "up" for direction
    classifiers, a position for the RL trader); ``confidence`` = max(P(up), P(down)) of that step, with
    P(up) from the Gaussian implied by the interval for value models.
    """
    ts0 = int(data.candles.ts[-1])
    close0 = float(data.candles.close[-1])
    bar = _bar_ms(data.candles)
    steps: list[dict[str, Any]] = []
    for i, k in enumerate(fc.steps):
        row: dict[str, Any] = {"step": int(k), "ts": ts0 + int(k) * bar}
        if fc.mean is not None and fc.lower is not None and fc.upper is not None:
            row.update(
                {
                    "log_return": float(fc.mean[i]),
                    "log_return_lower": float(fc.lower[i]),
                    "log_return_upper": float(fc.upper[i]),
                    "price": close0 * math.exp(fc.mean[i]),
                    "price_lower": close0 * math.exp(fc.lower[i]),
                    "price_upper": close0 * math.exp(fc.upper[i]),
                }
            )
        if fc.prob_up is not None:
            row["prob_up"] = float(fc.prob_up[i])
        if fc.position is not None:
            row["position"] = float(fc.position[i])
        steps.append(row)
    last = steps[-1]
    value: float | None
    prob_up: float | None = None
    if fc.kind == "value":
        value = last["price"] if target == "price" else last["log_return"]
        half = (last["log_return_upper"] - last["log_return_lower"]) / 2.0
        sd = half / z_value(fc.level) if half > 0 else 0.0
        prob_up = (
            float(NormalDist().cdf(last["log_return"] / sd)) if sd > 0 else (1.0 if last["log_return"] > 0 else 0.0)
        )
        direction = "up" if last["log_return"] > 0 else "down" if last["log_return"] < 0 else "flat"
    elif fc.kind == "direction":
        prob_up = last["prob_up"]
        value = prob_up
        direction = "up" if prob_up > 0.5 else "down" if prob_up < 0.5 else "flat"
    else:
        value = last["position"]
        direction = "up" if value > 0 else "down" if value < 0 else "flat"
    confidence = None if prob_up is None else max(prob_up, 1.0 - prob_up)
    return {
        "kind": fc.kind,
        "target": target if fc.kind == "value" else ("prob_up" if fc.kind == "direction" else "position"),
        "origin_ts": ts0,
        "origin_close": close0,
        "bar_ms": bar,
        "horizon": len(steps),
        "model_horizon": model_horizon,
        "level": fc.level,
        "prediction_value": value,
        "direction": direction,
        "prob_up": prob_up,
        "confidence": confidence,
        "steps": steps,
    }


def train(spec: Mapping[str, Any], report: ReportFn, should_cancel: CancelFn) -> dict[str, Any]:
    """Fit, score out of sample, and package one model version.

    ``report(fraction, message)`` receives progress in [0, 1]; ``should_cancel()`` is polled between units
    of work (epochs, trees, folds) and ends the job by raising :class:`Cancelled`. Bad input raises
    ``Invalid``; a model that cannot be fitted on this data raises ``FitFailed``.
    """
    started = time.perf_counter()
    ctx = FitContext(report, should_cancel)
    ctx.checkpoint()
    prepared = _prepare(spec)
    s = prepared.spec
    info = resolve(prepared.algorithm)
    ctx.progress(0.02, f"{len(prepared.candles)} candles, {len(prepared.data.feature_names)} features")
    bars_per_year = 365.0 * 86_400_000 / max(1, _bar_ms(prepared.candles))
    fee_bps = float(getattr(prepared.params, "fee_bps", 0.0))
    with single_thread(torch_too=info.family == "neural"):

        def make() -> Forecaster:
            return create(info.id, prepared.params, horizon=s.horizon, level=s.interval_level, seed=s.seed)

        try:
            result = evaluate(
                make,
                prepared.data,
                s.evaluation,
                target=s.target,
                level=s.interval_level,
                ctx=ctx.sub(0.03, 0.95),
                fee_bps=fee_bps,
                bars_per_year=bars_per_year,
            )
        except ValueError as exc:
            raise FitFailed(str(exc)) from exc
        model = result.final_model
        ctx.checkpoint()
        horizon = 1 if model.kind == "position" else s.horizon
        forecast = _forecast_dict(model.predict(horizon, prepared.data), prepared.data, s.target, s.horizon)
        payload = model.save()
    ts = prepared.candles.ts
    train_stop = result.folds[-1].train_stop
    origins = np.concatenate([f.origins for f in result.folds])
    fingerprint = candles_fingerprint(prepared.candles)
    training_window = {"start_ts": int(ts[0]), "end_ts": int(ts[train_stop - 1]), "n_bars": train_stop}
    test_window = {
        "first_origin_ts": int(ts[origins[0]]),
        "last_origin_ts": int(ts[origins[-1]]),
        "last_target_ts": int(ts[origins[-1] + s.horizon]),
        "n_origins": len(origins),
    }
    data_window = {
        "start_ts": int(ts[0]),
        "end_ts": int(ts[-1]),
        "n_bars": len(ts),
        "bar_ms": _bar_ms(prepared.candles),
    }
    public = s.public()
    public["algorithm"] = info.id
    public["params"] = prepared.params.model_dump(mode="json")
    versions = _versions()
    meta = {
        "algorithm": info.id,
        "spec": public,
        "forecaster": payload.meta,
        "feature_names": list(prepared.data.feature_names),
        "training_window": training_window,
        "data_fingerprint": fingerprint,
        "versions": versions,
    }
    bundle = pack_bundle(meta, payload.blobs)
    fit_info = dict(getattr(model, "fit_info", {}))
    if getattr(model, "epoch_seconds", None):
        fit_info["epoch_seconds"] = list(model.epoch_seconds)  # type: ignore[attr-defined]
    ctx.progress(1.0, "trained")
    return {
        "algorithm": info.id,
        "requested_algorithm": s.algorithm,
        "kind": model.kind,
        "params": public["params"],
        "spec": public,
        "metrics": result.metrics,
        "fit_info": fit_info,
        "training_window": training_window,
        "test_window": test_window,
        "data_window": data_window,
        "data_fingerprint": fingerprint,
        "forecast": forecast,
        "artifact": {"format": BUNDLE_FORMAT, "bytes": bundle, "sha256": sha256_hex(bundle), "size": len(bundle)},
        "versions": versions,
        "duration_s": time.perf_counter() - started,
    }


class LoadedModel:
    """A verified, loaded artefact, reusable for many predictions (e.g. a bot predicting every bar)."""

    def __init__(self, meta: dict[str, Any], forecaster: Forecaster) -> None:
        self.meta = meta
        self.forecaster = forecaster
        spec = meta["spec"]
        self.algorithm: str = meta["algorithm"]
        self.features = FeatureConfig.model_validate(spec["features"])
        self.target: str = spec["target"]
        self.horizon = int(spec["horizon"])

    def predict(self, candles: Candles | Mapping[str, Any], horizon: int | None = None) -> dict[str, Any]:
        """Forecast from the last of ``candles`` (which should end at the latest closed bar)."""
        if not isinstance(candles, Candles):
            try:
                candles = CandlesPayload.model_validate(dict(candles)).to_candles()
            except ValidationError as exc:
                raise _invalid(exc, "candles") from exc
        if horizon is None:
            horizon = 1 if self.forecaster.kind == "position" else self.horizon
        try:
            data = build_training_data(candles, self.features, self.horizon)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        with single_thread(torch_too=False):
            fc = self.forecaster.predict(horizon, data)
        out = _forecast_dict(fc, data, self.target, self.horizon)
        out["algorithm"] = self.algorithm
        out["data_fingerprint"] = candles_fingerprint(candles)
        return out


def load_model(artifact: bytes, sha256: str) -> LoadedModel:
    """Verify ``artifact`` against the recorded ``sha256`` (``ArtifactIntegrityError`` on mismatch), then load."""
    meta, blobs = unpack_bundle(artifact, sha256)
    info = resolve(meta["algorithm"])
    ok, reason = info.availability
    if not ok:
        from aaiti.core.errors import Unavailable

        raise Unavailable(f"{info.id} is unavailable: {reason}")
    cls = info.load_class()
    forecaster = cls.load(ArtifactPayload(meta=meta["forecaster"], blobs=blobs))
    return LoadedModel(meta, forecaster)


def predict(
    artifact: bytes, sha256: str, candles: Candles | Mapping[str, Any], horizon: int | None = None
) -> dict[str, Any]:
    """Verify, load and forecast ``horizon`` bars (default: the model's horizon) after the last candle."""
    return load_model(artifact, sha256).predict(candles, horizon)
