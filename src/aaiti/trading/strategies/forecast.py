"""Model-driven strategies: they read only the forecast aligned to the current bar.

They are kept out of the signal registry (``STRATEGIES``) because they cannot run on candles alone: a backtest or
bot must supply a forecast series from a trained model. They live in ``FORECAST_STRATEGIES``; the backtests domain
computes the series from a stored model version (``aaiti.backtests.tasks.model_forecasts``), where the forecast
is the signed *edge* ``2 * P(up) - 1`` in ``[-1, 1]`` (``confidence = max(P(up), P(down)) = (1 + |edge|) / 2``).

Alignment rule: ``forecast[i]`` is the model's output computed from data up to and including bar ``i``'s close
(for example the predicted return of bar ``i + 1``). A forecast that used later data would leak the future into
the backtest; the producer of the array is responsible for that, the strategy cannot detect it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from aaiti.trading.candles import Candles, FloatArray
from aaiti.trading.strategies.base import Strategy, StrategyParams, StrategyStream


class ForecastParams(StrategyParams):
    long_above: float = Field(default=0.0, description="Go long when the forecast is above this")
    short_below: float | None = Field(default=None, description="Go short when the forecast is below this")
    min_confidence: float = Field(
        default=0.5,
        ge=0.5,
        lt=1.0,
        description="Trade only when |forecast| >= 2 * min_confidence - 1, i.e. max(P(up), P(down)) >= this "
        "for an edge forecast (2 * P(up) - 1); 0.5 = no filter",
    )
    sizing: Literal["fixed", "confidence"] = Field(
        default="fixed",
        description="fixed: full target exposure; confidence: exposure |forecast| (the Kelly fraction of an "
        "even-odds bet with win probability P(up)), capped at 1",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ForecastParams:
        if self.short_below is not None and self.short_below > self.long_above:
            raise ValueError("short_below must not exceed long_above")
        return self


class _ForecastStream:
    def __init__(self, p: ForecastParams) -> None:
        self.p = p

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
        if forecast is None or math.isnan(forecast):
            return 0.0
        if abs(forecast) < 2.0 * self.p.min_confidence - 1.0:
            return 0.0
        size = 1.0 if self.p.sizing == "fixed" else min(1.0, abs(forecast))
        if forecast > self.p.long_above:
            return size
        if self.p.short_below is not None and forecast < self.p.short_below:
            return -size
        return 0.0

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        return None


class ForecastThreshold(Strategy):
    name: ClassVar[str] = "forecast_threshold"
    title: ClassVar[str] = "Forecast threshold"
    description: ClassVar[str] = "Long when the model's forecast is above a threshold, optionally short below one."
    params_model: ClassVar[type[StrategyParams]] = ForecastParams
    uses_forecast: ClassVar[bool] = True

    @property
    def p(self) -> ForecastParams:
        assert isinstance(self.params, ForecastParams)
        return self.params

    def warmup(self) -> int:
        return 0

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        if forecast is None or len(forecast) != len(candles):
            raise ValueError("forecast_threshold needs a forecast array aligned to the candles")
        f = np.asarray(forecast, dtype=np.float64)
        size = np.ones_like(f) if self.p.sizing == "fixed" else np.minimum(1.0, np.abs(f))
        out = np.where(f > self.p.long_above, size, 0.0)
        if self.p.short_below is not None:
            out = np.where(f < self.p.short_below, -size, out)
        # NaN compares false everywhere above, so bars without a forecast hold no position.
        confident = np.abs(f) >= 2.0 * self.p.min_confidence - 1.0
        return np.where(confident, out, 0.0)

    def stream(self) -> StrategyStream:
        return _ForecastStream(self.p)
