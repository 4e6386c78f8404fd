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


def create_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Instantiate a registered strategy; raises ``ValueError`` for an unknown name or invalid parameters
    (pydantic's ``ValidationError`` is a ``ValueError``)."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return cls(params)


def strategy_catalog() -> list[dict[str, Any]]:
    """Name, title, description and JSON Schema of the parameters of every registered strategy."""
    return [
        {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "uses_forecast": cls.uses_forecast,
            "params_schema": cls.params_model.model_json_schema(by_alias=True),
        }
        for cls in STRATEGIES.values()
    ]


__all__ = [
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
