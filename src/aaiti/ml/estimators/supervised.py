"""Shared machinery of the models that learn ``features[t] -> log(close[t + k] / close[t])``, k = 1..h.

Rows: an origin ``t`` is a training row when its features are defined (after the warm-up, and after a
full input sequence for the recurrent networks) and its target ``t + h`` lies inside the training window.

Validation: the last ``validation_fraction`` (torch) / ``calibration_fraction`` (scikit-learn) of the rows
are held out of the gradient steps / the fit, with a purge gap of ``h`` rows so no held-out target overlaps
a fitted one. Torch models stop early on it; every regressor calibrates its intervals on it (split
conformal: the ``level`` quantile of the absolute held-out errors, per step, with the finite-sample
correction). Direction classifiers fit ``P(close[t + k] > close[t])`` on all rows.
"""

from __future__ import annotations

import math
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
from aaiti.ml.estimators.params import Params
from aaiti.ml.features import forward_log_returns

MIN_ROWS = 10


def conformal_quantile(abs_errors: FloatArray, level: float) -> FloatArray:
    """Per-column split-conformal radius: the ceil((n + 1) level)-th smallest absolute error."""
    n = abs_errors.shape[0]
    if n == 0:
        raise FitFailed("no held-out rows to calibrate the intervals")
    rank = min(n, math.ceil((n + 1) * level)) - 1
    return np.asarray(np.sort(abs_errors, axis=0)[rank], dtype=np.float64)


class SupervisedForecaster:
    kind: ClassVar[ForecastKind] = "value"
    algorithm: ClassVar[str]
    params_model: ClassVar[type[Params]]

    def __init__(self, params: Params, *, horizon: int, level: float, seed: int = 0) -> None:
        self.params = params
        self._horizon = horizon
        self.level = level
        self.seed = seed
        self.radius: list[float] = []
        self.feature_names: tuple[str, ...] = ()
        self.fit_info: dict[str, Any] = {}
        self._train: TrainingData | None = None
        self._fitted = False

    @property
    def horizon(self) -> int:
        return self._horizon

    # --- hooks ---------------------------------------------------------------------------------------------

    def _history(self) -> int:
        """Bars of feature history one forecast reads (1 = the current row only)."""
        return 1

    def _holdout_fraction(self) -> float:
        return float(getattr(self.params, "calibration_fraction", getattr(self.params, "validation_fraction", 0.0)))

    def _fit_model(
        self,
        data: TrainingData,
        fit_rows: IntArray,
        y_fit: FloatArray,
        val_rows: IntArray,
        y_val: FloatArray,
        ctx: FitContext,
    ) -> None:
        raise NotImplementedError

    def _predict_rows(self, data: TrainingData, rows: IntArray) -> FloatArray:
        """(len(rows) x h) log returns, or probabilities of an up move for classifiers."""
        raise NotImplementedError

    def _save_model(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        raise NotImplementedError

    def _load_model(self, meta: dict[str, Any], blobs: dict[str, bytes]) -> None:
        raise NotImplementedError

    # --- rows ----------------------------------------------------------------------------------------------

    def _first_row(self, data: TrainingData) -> int:
        return data.first_valid + self._history() - 1

    def _check_features(self, data: TrainingData) -> None:
        if self._fitted and data.feature_names != self.feature_names:
            raise Invalid("the candles' features do not match the ones the model was trained on")

    def _split(self, train: TrainingData) -> tuple[IntArray, IntArray]:
        h = self._horizon
        rows = np.arange(self._first_row(train), len(train) - h, dtype=np.int64)
        frac = self._holdout_fraction()
        n_val = max(MIN_ROWS, round(len(rows) * frac)) if frac > 0 else 0
        n_fit = len(rows) - n_val - (h if n_val else 0)
        if n_fit < MIN_ROWS:
            raise Invalid(f"{self.algorithm} needs more training bars (only {n_fit} fit rows after the warm-up)")
        return rows[:n_fit], rows[len(rows) - n_val :]

    # --- contract ------------------------------------------------------------------------------------------

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        ctx = ctx or FitContext()
        ctx.checkpoint()
        fit_rows, val_rows = self._split(train)
        targets = forward_log_returns(train.candles.close, self._horizon)
        if self.kind == "direction":
            targets = (targets > 0).astype(np.float64)
        self.feature_names = train.feature_names
        self._fit_model(train, fit_rows, targets[fit_rows], val_rows, targets[val_rows], ctx)
        self._fitted = True
        if self.kind == "value" and len(val_rows):
            pred = self._predict_rows(train, val_rows)
            self.radius = [float(v) for v in conformal_quantile(np.abs(pred - targets[val_rows]), self.level)]
        self.fit_info.update({"fit_rows": len(fit_rows), "holdout_rows": len(val_rows)})
        self._train = train
        return self

    def _data(self, context: TrainingData | None) -> TrainingData:
        data = context if context is not None else self._train
        if data is None:
            raise Invalid("a loaded model needs the recent candles as context to forecast")
        if not self._fitted:
            raise FitFailed("model is not fitted")
        self._check_features(data)
        return data

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        check_horizon(horizon, self._horizon, self.algorithm)
        data = self._data(context)
        row = len(data) - 1
        if row < self._first_row(data):
            raise Invalid(f"{self.algorithm} needs more candles of history to forecast")
        out = self._predict_rows(data, np.array([row], dtype=np.int64))[0, :horizon]
        steps = np.arange(1, horizon + 1, dtype=np.int64)
        if self.kind == "direction":
            return Forecast(kind="direction", steps=steps, level=self.level, prob_up=out)
        radius = np.asarray(self.radius[:horizon])
        return Forecast(kind="value", steps=steps, level=self.level, mean=out, lower=out - radius, upper=out + radius)

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        data = self._data(data)
        if len(origins) and origins.min() < self._first_row(data):
            raise Invalid("an origin lies inside the feature warm-up")
        out = self._predict_rows(data, origins)[:, self._horizon - 1]
        h = self._horizon
        if self.kind == "direction":
            return OriginForecasts(kind="direction", origins=origins, horizon=h, level=self.level, prob_up=out)
        r = self.radius[h - 1]
        return OriginForecasts(
            kind="value", origins=origins, horizon=h, level=self.level, mean=out, lower=out - r, upper=out + r
        )

    def save(self) -> ArtifactPayload:
        if not self._fitted:
            raise FitFailed("model is not fitted")
        meta, blobs = self._save_model()
        return ArtifactPayload(
            meta={
                "horizon": self._horizon,
                "level": self.level,
                "seed": self.seed,
                "params": self.params.model_dump(mode="json"),
                "radius": self.radius,
                "feature_names": list(self.feature_names),
                "fit_info": self.fit_info,
                "model": meta,
            },
            blobs=blobs,
        )

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        meta = payload.meta
        obj = cls(
            cls.params_model.model_validate(meta["params"]),
            horizon=int(meta["horizon"]),
            level=float(meta["level"]),
            seed=int(meta.get("seed", 0)),
        )
        obj.radius = [float(v) for v in meta["radius"]]
        obj.feature_names = tuple(meta["feature_names"])
        obj.fit_info = dict(meta.get("fit_info", {}))
        obj._load_model(meta["model"], payload.blobs)
        obj._fitted = True
        return obj
