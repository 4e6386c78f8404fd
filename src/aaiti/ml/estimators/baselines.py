"""Baselines: naive (last value), drift, seasonal naive and moving average, on log closes.

Intervals are Gaussian with the scale estimated on the training window only:
- naive: RMS of one-bar log returns, growing with sqrt(k);
- drift: standard deviation of one-bar log returns around the mean, times sqrt(k (1 + k / T));
- seasonal naive: RMS of season-over-season log changes, growing with sqrt(ceil(k / m));
- moving average: RMS of the training window's own k-step errors of the average.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np

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
    z_value,
)
from aaiti.ml.estimators.params import DriftParams, MovingAverageParams, NaiveParams, SeasonalNaiveParams


class _Baseline:
    kind: ClassVar[ForecastKind] = "value"
    algorithm: ClassVar[str]

    def __init__(self, *, horizon: int, level: float, seed: int = 0) -> None:
        self._horizon = horizon
        self.level = level
        self.seed = seed
        self._fitted = False
        self._train: TrainingData | None = None

    @property
    def horizon(self) -> int:
        return self._horizon

    # Subclasses implement these two on log closes.
    def _mean_sd(self, logc: FloatArray, origins: IntArray, steps: IntArray) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _fit(self, logc: FloatArray) -> None:
        raise NotImplementedError

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        if ctx is not None:
            ctx.checkpoint()
        self._fit(train.log_close)
        self._fitted = True
        self._train = train
        return self

    def _context(self, context: TrainingData | None) -> TrainingData:
        data = context if context is not None else self._train
        if data is None:
            raise FitFailed("model is not fitted and no context was given")
        return data

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        data = self._context(context)
        logc = data.log_close
        steps = np.arange(1, horizon + 1, dtype=np.int64)
        mean, sd = self._mean_sd(logc, np.array([len(logc) - 1], dtype=np.int64), steps)
        z = z_value(self.level)
        return Forecast(
            kind="value",
            steps=steps,
            level=self.level,
            mean=mean[0],
            lower=mean[0] - z * sd[0],
            upper=mean[0] + z * sd[0],
        )

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        h = self._horizon
        mean, sd = self._mean_sd(data.log_close, origins, np.array([h], dtype=np.int64))
        z = z_value(self.level)
        return OriginForecasts(
            kind="value",
            origins=origins,
            horizon=h,
            level=self.level,
            mean=mean[:, 0],
            lower=mean[:, 0] - z * sd[:, 0],
            upper=mean[:, 0] + z * sd[:, 0],
        )

    def save(self) -> ArtifactPayload:
        return ArtifactPayload(meta={"horizon": self._horizon, "level": self.level, "state": self._state()})

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        raise NotImplementedError


def _rms(x: FloatArray) -> float:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        raise FitFailed("not enough data to estimate the forecast error")
    value = float(np.sqrt(np.mean(x * x)))
    if not math.isfinite(value) or value <= 0:
        raise FitFailed("the training window has no price variation")
    return value


class NaiveForecaster(_Baseline):
    algorithm = "naive"

    def __init__(self, params: NaiveParams, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(horizon=horizon, level=level, seed=seed)
        self.params = params
        self.sigma = float("nan")

    def _fit(self, logc: FloatArray) -> None:
        self.sigma = _rms(np.diff(logc))

    def _mean_sd(self, logc: FloatArray, origins: IntArray, steps: IntArray) -> tuple[FloatArray, FloatArray]:
        mean = np.zeros((len(origins), len(steps)))
        sd = np.broadcast_to(self.sigma * np.sqrt(steps.astype(np.float64)), mean.shape).copy()
        return mean, sd

    def _state(self) -> dict[str, Any]:
        return {"sigma": self.sigma}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.sigma = float(state["sigma"])

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        obj = cls(NaiveParams(), horizon=payload.meta["horizon"], level=payload.meta["level"])
        obj._set_state(payload.meta["state"])
        obj._fitted = True
        return obj


class DriftForecaster(_Baseline):
    algorithm = "drift"

    def __init__(self, params: DriftParams, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(horizon=horizon, level=level, seed=seed)
        self.params = params
        self.slope = float("nan")
        self.sigma = float("nan")
        self.n_train = 0

    def _fit(self, logc: FloatArray) -> None:
        r = np.diff(logc)
        if len(r) < 2:
            raise FitFailed("drift needs at least three closes")
        self.slope = float(np.mean(r))
        self.sigma = float(np.std(r, ddof=1))
        self.n_train = len(r)
        if not self.sigma > 0:
            raise FitFailed("the training window has no price variation")

    def _mean_sd(self, logc: FloatArray, origins: IntArray, steps: IntArray) -> tuple[FloatArray, FloatArray]:
        k = steps.astype(np.float64)
        mean = np.broadcast_to(self.slope * k, (len(origins), len(steps))).copy()
        sd = np.broadcast_to(self.sigma * np.sqrt(k * (1.0 + k / self.n_train)), mean.shape).copy()
        return mean, sd

    def _state(self) -> dict[str, Any]:
        return {"slope": self.slope, "sigma": self.sigma, "n_train": self.n_train}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.slope = float(state["slope"])
        self.sigma = float(state["sigma"])
        self.n_train = int(state["n_train"])

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        obj = cls(DriftParams(), horizon=payload.meta["horizon"], level=payload.meta["level"])
        obj._set_state(payload.meta["state"])
        obj._fitted = True
        return obj


class SeasonalNaiveForecaster(_Baseline):
    algorithm = "seasonal_naive"

    def __init__(self, params: SeasonalNaiveParams, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(horizon=horizon, level=level, seed=seed)
        self.params = params
        self.sigma = float("nan")

    def _fit(self, logc: FloatArray) -> None:
        m = self.params.season_length
        if len(logc) <= 2 * m:
            raise FitFailed(f"seasonal naive needs more than {2 * m} bars")
        self.sigma = _rms(logc[m:] - logc[:-m])

    def _mean_sd(self, logc: FloatArray, origins: IntArray, steps: IntArray) -> tuple[FloatArray, FloatArray]:
        m = self.params.season_length
        seasons = np.ceil(steps / m).astype(np.int64)
        src = origins[:, None] + steps[None, :] - m * seasons[None, :]
        if np.any(src < 0):
            raise FitFailed("an origin has less than one season of history")
        mean = logc[src] - logc[origins][:, None]
        sd = np.broadcast_to(self.sigma * np.sqrt(seasons.astype(np.float64)), mean.shape).copy()
        return mean, sd

    def _state(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "season_length": self.params.season_length}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.sigma = float(state["sigma"])

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        params = SeasonalNaiveParams(season_length=payload.meta["state"]["season_length"])
        obj = cls(params, horizon=payload.meta["horizon"], level=payload.meta["level"])
        obj._set_state(payload.meta["state"])
        obj._fitted = True
        return obj


class MovingAverageForecaster(_Baseline):
    """Forecasts every step at the simple moving average of the last ``window`` closes."""

    algorithm = "moving_average"
    _max_error_steps = 64

    def __init__(self, params: MovingAverageParams, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(horizon=horizon, level=level, seed=seed)
        self.params = params
        self.step_sd: list[float] = []

    @staticmethod
    def _log_sma(logc: FloatArray, window: int) -> FloatArray:
        prices = np.exp(logc)
        csum = np.concatenate([[0.0], np.cumsum(prices)])
        out = np.full(len(prices), np.nan)
        out[window - 1 :] = np.log((csum[window:] - csum[:-window]) / window)
        return out

    def _fit(self, logc: FloatArray) -> None:
        w = self.params.window
        if len(logc) <= 2 * w:
            raise FitFailed(f"moving average needs more than {2 * w} bars")
        sma = self._log_sma(logc, w)
        kmax = min(max(self._horizon, self._max_error_steps), len(logc) - w)
        self.step_sd = []
        for k in range(1, kmax + 1):
            err = logc[k:] - sma[:-k]
            self.step_sd.append(_rms(err))

    def _sd(self, steps: IntArray) -> FloatArray:
        sd = np.asarray(self.step_sd)
        kmax = len(sd)
        out = np.empty(len(steps))
        for i, k in enumerate(steps):
            out[i] = sd[k - 1] if k <= kmax else sd[-1] * math.sqrt(k / kmax)
        return out

    def _mean_sd(self, logc: FloatArray, origins: IntArray, steps: IntArray) -> tuple[FloatArray, FloatArray]:
        w = self.params.window
        if np.any(origins < w - 1):
            raise FitFailed("an origin has less history than the averaging window")
        sma = self._log_sma(logc, w)
        level = sma[origins] - logc[origins]
        mean = np.broadcast_to(level[:, None], (len(origins), len(steps))).copy()
        sd = np.broadcast_to(self._sd(steps), mean.shape).copy()
        return mean, sd

    def _state(self) -> dict[str, Any]:
        return {"step_sd": self.step_sd, "window": self.params.window}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.step_sd = [float(v) for v in state["step_sd"]]

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        params = MovingAverageParams(window=payload.meta["state"]["window"])
        obj = cls(params, horizon=payload.meta["horizon"], level=payload.meta["level"])
        obj._set_state(payload.meta["state"])
        obj._fitted = True
        return obj
