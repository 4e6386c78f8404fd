"""Strategy registry: every strategy a user can pick by name, with its parameter schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aaiti.trading.strategies.base import (
    Strategy,
    StrategyParams,
    StrategyStream,
    state_machine_step,
    state_machine_targets,
)
from aaiti.trading.strategies.builtin import (
    BollingerBreakout,
    BollingerMeanReversion,
    BuyAndHold,
    DonchianBreakout,
    EmaCrossover,
    MacdMomentum,
    RsiMeanReversion,
    SmaCrossover,
)
from aaiti.trading.strategies.forecast import ForecastThreshold
from aaiti.trading.strategies.rules import RuleStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        BuyAndHold,
        SmaCrossover,
        EmaCrossover,
        RsiMeanReversion,
        MacdMomentum,
        BollingerMeanReversion,
        BollingerBreakout,
        DonchianBreakout,
        RuleStrategy,
    )
}

#: Strategies that need a forecast series aligned to the bars (from a trained model); not runnable on candles
#: alone, hence kept apart from ``STRATEGIES``.
FORECAST_STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (ForecastThreshold,)}
#: Every strategy a backtest may name.
ALL_STRATEGIES: dict[str, type[Strategy]] = {**STRATEGIES, **FORECAST_STRATEGIES}


def create_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Instantiate a registered strategy; raises ``ValueError`` for an unknown name or invalid parameters
    (pydantic's ``ValidationError`` is a ``ValueError``)."""
    cls = ALL_STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(ALL_STRATEGIES))}")
    return cls(params)


def strategy_catalog(include_forecast: bool = False) -> list[dict[str, Any]]:
    """Name, title, description and JSON Schema of the parameters of every registered strategy (with
    ``include_forecast``, also the model-driven ones)."""
    registry = ALL_STRATEGIES if include_forecast else STRATEGIES
    return [
        {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "uses_forecast": cls.uses_forecast,
            "params_schema": cls.params_model.model_json_schema(by_alias=True),
        }
        for cls in registry.values()
    ]


__all__ = [
    "ALL_STRATEGIES",
    "FORECAST_STRATEGIES",
    "STRATEGIES",
    "ForecastThreshold",
    "Strategy",
    "StrategyParams",
    "StrategyStream",
    "create_strategy",
    "state_machine_step",
    "state_machine_targets",
    "strategy_catalog",
]
