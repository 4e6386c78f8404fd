"""The hook for model-driven strategies (models arrive with the forecasting-models work).

:class:`ForecastThreshold` shows the contract: it reads only the forecast aligned to the current bar. It is not
in the default registry because a backtest or bot must first be given a forecast series from a trained model;
the models work registers it (or its own strategies) once that source exists.

Alignment rule: ``forecast[i]`` is the model's output computed from data up to and including bar ``i``'s close
(for example the predicted return of bar ``i + 1``). A forecast that used later data would leak the future into
the backtest; the producer of the array is responsible for that, the strategy cannot detect it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from aaiti.trading.candles import Candles, FloatArray
from aaiti.trading.strategies.base import Strategy, StrategyParams, StrategyStream


class ForecastParams(StrategyParams):
    long_above: float = Field(default=0.0, description="Go long when the forecast is above this")
    short_below: float | None = Field(default=None, description="Go short when the forecast is below this")

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
        if forecast > self.p.long_above:
            return 1.0
        if self.p.short_below is not None and forecast < self.p.short_below:
            return -1.0
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
        out = np.where(f > self.p.long_above, 1.0, 0.0)
        if self.p.short_below is not None:
            out = np.where(f < self.p.short_below, -1.0, out)
        return out

    def stream(self) -> StrategyStream:
        return _ForecastStream(self.p)
