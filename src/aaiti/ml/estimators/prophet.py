"""Prophet (optional): a piecewise-linear trend plus Fourier seasonality fitted to the log close.

Only offered where ``prophet`` imports (its wheel bundles cmdstan, so it fits offline). Prophet is a curve
in time: it does not update on new observations, so a forecast from origin ``t`` is the fitted curve at
``t + k`` relative to the close at ``t``. Intervals come from Prophet's simulation, seeded. The model is
persisted with ``prophet.serialize.model_to_json`` (JSON, no pickle).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, ClassVar, Self

import numpy as np

from aaiti.core.errors import Invalid
from aaiti.ml.estimators.base import (
    ArtifactPayload,
    FitContext,
    FitFailed,
    FloatArray,
    Forecast,
    ForecastKind,
    IntArray,
    OriginForecasts,
    TrainingData,
    check_horizon,
)
from aaiti.ml.estimators.params import ProphetParams


def _lib(name: str) -> Any:
    # prophet is an optional extra (and pandas untyped here); imported only when a Prophet model is used.
    return importlib.import_module(name)


def _bar_ms(ts: Any) -> int:
    diffs = np.diff(np.asarray(ts, dtype=np.int64))
    if len(diffs) == 0:
        raise Invalid("need at least two candles")
    return int(np.median(diffs))


class ProphetForecaster:
    kind: ClassVar[ForecastKind] = "value"
    algorithm: ClassVar[str] = "prophet"
    params_model = ProphetParams

    def __init__(self, params: ProphetParams, *, horizon: int, level: float, seed: int = 0) -> None:
        self.params = params
        self._horizon = horizon
        self.level = level
        self.seed = seed
        self.model: Any = None
        self.bar_ms = 0
        self.fit_info: dict[str, Any] = {}
        self._train: TrainingData | None = None

    @property
    def horizon(self) -> int:
        return self._horizon

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        pd = _lib("pandas")
        prophet_cls = _lib("prophet").Prophet
        ctx = ctx or FitContext()
        ctx.checkpoint()
        logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
        p = self.params
        model = prophet_cls(
            changepoint_prior_scale=p.changepoint_prior_scale,
            seasonality_prior_scale=p.seasonality_prior_scale,
            weekly_seasonality=p.weekly_seasonality,
            yearly_seasonality=p.yearly_seasonality,
            daily_seasonality=p.daily_seasonality,
            interval_width=self.level,
        )
        frame = pd.DataFrame({"ds": pd.to_datetime(train.candles.ts, unit="ms"), "y": train.log_close})
        try:
            model.fit(frame, seed=self.seed)
        except (RuntimeError, ValueError) as exc:
            raise FitFailed(f"prophet fit failed: {exc}") from exc
        self.model = model
        self.bar_ms = _bar_ms(train.candles.ts)
        self._train = train
        ctx.progress(1.0, "fitted")
        return self

    def _curve(self, ts_ms: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        pd = _lib("pandas")
        if self.model is None:
            raise FitFailed("model is not fitted")
        state = np.random.get_state()
        np.random.seed(self.seed)  # Prophet samples its intervals from numpy's global generator
        try:
            out = self.model.predict(pd.DataFrame({"ds": pd.to_datetime(ts_ms, unit="ms")}))
        finally:
            np.random.set_state(state)
        return (
            out["yhat"].to_numpy(dtype=np.float64),
            out["yhat_lower"].to_numpy(dtype=np.float64),
            out["yhat_upper"].to_numpy(dtype=np.float64),
        )

    def _data(self, context: TrainingData | None) -> TrainingData:
        data = context if context is not None else self._train
        if data is None:
            raise Invalid("a loaded model needs the recent candles as context to forecast")
        return data

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        check_horizon(horizon, 1000, self.algorithm)
        data = self._data(context)
        steps = np.arange(1, horizon + 1, dtype=np.int64)
        ts = int(data.candles.ts[-1]) + steps * self.bar_ms
        mean, lo, hi = self._curve(ts)
        base = float(data.log_close[-1])
        return Forecast(kind="value", steps=steps, level=self.level, mean=mean - base, lower=lo - base, upper=hi - base)

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        h = self._horizon
        ts = data.candles.ts[origins] + h * self.bar_ms
        mean, lo, hi = self._curve(ts)
        base = data.log_close[origins]
        return OriginForecasts(
            kind="value",
            origins=origins,
            horizon=h,
            level=self.level,
            mean=mean - base,
            lower=lo - base,
            upper=hi - base,
        )

    def save(self) -> ArtifactPayload:
        if self.model is None:
            raise FitFailed("model is not fitted")
        return ArtifactPayload(
            meta={
                "horizon": self._horizon,
                "level": self.level,
                "seed": self.seed,
                "bar_ms": self.bar_ms,
                "params": self.params.model_dump(mode="json"),
            },
            blobs={"prophet.json": _lib("prophet.serialize").model_to_json(self.model).encode()},
        )

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        meta = payload.meta
        obj = cls(
            ProphetParams.model_validate(meta["params"]),
            horizon=int(meta["horizon"]),
            level=float(meta["level"]),
            seed=int(meta["seed"]),
        )
        obj.bar_ms = int(meta["bar_ms"])
        obj.model = _lib("prophet.serialize").model_from_json(payload.blobs["prophet.json"].decode())
        return obj
