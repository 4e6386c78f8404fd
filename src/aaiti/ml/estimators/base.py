"""The Forecaster contract shared by every algorithm.

Units and look-ahead rules (they hold for every implementation):

- A forecast is made at an *origin* bar ``t`` (after that bar closed) and may use candles ``0..t`` only.
- ``mean``, ``lower`` and ``upper`` are **cumulative log returns** from the origin's close:
  ``log(close[t + k] / close[t])`` for step ``k``. ``Forecast.prices(origin_close)`` turns them into prices.
  Interval bounds are quantiles at ``level`` (e.g. 0.9 = the 5 % and 95 % quantiles), so they map to price
  quantiles through ``exp`` unchanged.
- Direction classifiers fill ``prob_up`` (probability that ``close[t + k] > close[t]``) instead of values;
  the reinforcement-learning trader fills ``position`` (-1 short, 0 flat, +1 long, held over the next bar).
- ``horizon`` (h) is the step a model is trained and scored on. Models that regress the future directly
  (scikit-learn, torch) predict steps ``1..h`` only; state-space models and baselines forecast any number
  of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from aaiti.core.errors import Invalid
from aaiti.trading.candles import Candles

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ForecastKind = Literal["value", "direction", "position"]


class Cancelled(Exception):
    """Raised inside a fit when the job was asked to stop (cooperative cancellation)."""


class FitFailed(Exception):
    """The algorithm could not produce a model from this data (a numerical failure, not a bug)."""


@dataclass(frozen=True, slots=True)
class TrainingData:
    """Candles plus causally computed features (built by :func:`aaiti.ml.features.build_training_data`).

    ``features[t]`` uses candles ``0..t`` only. Rows before ``first_valid`` are indicator warm-up (NaN).
    ``horizon`` is the model's scoring horizon h in bars. Slicing with :meth:`head` keeps the invariants,
    because every feature is causal (tested by perturbing the future).
    """

    candles: Candles
    features: FloatArray
    feature_names: tuple[str, ...]
    horizon: int
    first_valid: int
    indicator_columns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.features.shape[0] != len(self.candles):
            raise ValueError("features and candles differ in length")
        if self.horizon < 1:
            raise ValueError("horizon must be >= 1")

    def __len__(self) -> int:
        return len(self.candles)

    @property
    def log_close(self) -> FloatArray:
        return np.log(self.candles.close)

    def head(self, stop: int) -> TrainingData:
        """The first ``stop`` bars (the data known at bar ``stop - 1``)."""
        return TrainingData(
            candles=self.candles.slice(0, stop),
            features=self.features[:stop],
            feature_names=self.feature_names,
            horizon=self.horizon,
            first_valid=self.first_valid,
            indicator_columns=self.indicator_columns,
        )


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast path from one origin: steps ``1..H`` (see the module docstring for units)."""

    kind: ForecastKind
    steps: IntArray
    level: float
    mean: FloatArray | None = None
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    prob_up: FloatArray | None = None
    position: FloatArray | None = None

    def prices(self, origin_close: float) -> dict[str, FloatArray] | None:
        if self.mean is None or self.lower is None or self.upper is None:
            return None
        return {
            "mean": origin_close * np.exp(self.mean),
            "lower": origin_close * np.exp(self.lower),
            "upper": origin_close * np.exp(self.upper),
        }


@dataclass(frozen=True, slots=True)
class OriginForecasts:
    """The h-step-ahead forecast from each of several origins (used for out-of-sample scoring).

    Element ``i`` is the forecast of ``log(close[origins[i] + h] / close[origins[i]])`` made with data
    ``0..origins[i]`` only.
    """

    kind: ForecastKind
    origins: IntArray
    horizon: int
    level: float
    mean: FloatArray | None = None
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    prob_up: FloatArray | None = None
    position: FloatArray | None = None


@dataclass(slots=True)
class ArtifactPayload:
    """What a forecaster persists: JSON-able metadata and named binary blobs (no pickles of our own)."""

    meta: dict[str, Any]
    blobs: dict[str, bytes] = field(default_factory=dict)


class FitContext:
    """Progress reporting and cooperative cancellation handed to ``fit``.

    ``progress(fraction, message)`` maps ``fraction`` in [0, 1] into this context's span of the job's overall
    progress. ``checkpoint()`` raises :class:`Cancelled` when the job should stop; fits call it between
    epochs, trees, folds and other units of work.
    """

    def __init__(
        self,
        report: Callable[[float, str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        span: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self._report = report
        self._should_cancel = should_cancel
        self._span = span

    def progress(self, fraction: float, message: str) -> None:
        if self._report is not None:
            lo, hi = self._span
            self._report(lo + (hi - lo) * min(1.0, max(0.0, fraction)), message)

    def checkpoint(self) -> None:
        if self._should_cancel is not None and self._should_cancel():
            raise Cancelled("training cancelled")

    def sub(self, start: float, stop: float) -> FitContext:
        lo, hi = self._span
        return FitContext(self._report, self._should_cancel, (lo + (hi - lo) * start, lo + (hi - lo) * stop))


@runtime_checkable
class Forecaster(Protocol):
    """What every algorithm implements; the registry maps algorithm ids to these classes."""

    algorithm: ClassVar[str]
    kind: ClassVar[ForecastKind]

    @property
    def horizon(self) -> int: ...

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        """Estimate parameters from ``train`` only."""
        ...

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        """Forecast steps ``1..horizon`` after the last bar of ``context`` (default: the training data).

        Parameters stay as fitted; newer candles in ``context`` only update the model's state (a Kalman
        filter pass, the latest feature row), which is how a model is used after training.
        """
        ...

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        """The h-step forecast from each origin in ``origins``, each using ``data`` up to that origin."""
        ...

    def save(self) -> ArtifactPayload: ...

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self: ...


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile for a central interval at ``level``."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def check_horizon(requested: int, limit: int | None, what: str) -> None:
    if requested < 1:
        raise Invalid("horizon must be at least 1 bar")
    if limit is not None and requested > limit:
        raise Invalid(f"{what} forecasts at most {limit} bars ahead")
