"""The Strategy protocol shared by backtests and bots.

A strategy is a pure, deterministic function from closed candles (and, optionally, model forecasts) to a
**target exposure** per bar in ``[-1, 1]``: ``1`` = fully long (as much as the sizing rule allows), ``-1`` = fully
short, ``0`` = flat. The value at bar ``i`` is decided on bar ``i``'s close, using bars ``0..i`` only; the engine
acts on it at the next bar's open. Warm-up bars, where the strategy cannot decide yet, are ``0``.

Each strategy offers the same logic in two forms that must agree exactly (tested for every built-in strategy):

- ``targets(candles, forecast=None)``: the whole series at once (vectorised), used by backtests;
- ``stream()``: an object whose ``update(ts, open, high, low, close, volume, forecast=None)`` consumes one closed
  bar and returns that bar's target, with ``get_state()``/``set_state()`` (JSON-compatible) so a paper bot can
  persist and resume it.

Model-driven strategies (the hook): ``forecast`` is an optional float array aligned to the bars, where
``forecast[i]`` must have been produced from information available at bar ``i``'s close (for example a model's
predicted return for the next bar, fitted on data up to ``i``). Strategies with ``uses_forecast = True`` read it;
the others ignore it. See :class:`aaiti.trading.strategies.forecast.ForecastThreshold` for the contract in code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from aaiti.trading.candles import Candles, FloatArray, IntArray


class StrategyParams(BaseModel):
    """Base of every strategy's parameter model: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyStream(Protocol):
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
        """Consume one closed bar; return the target exposure decided on its close."""
        ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: Mapping[str, Any]) -> None: ...


class Strategy(ABC):
    """Base class of the built-in strategies. Subclasses set the class attributes and implement the two forms."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]
    uses_forecast: ClassVar[bool] = False

    def __init__(self, params: StrategyParams | Mapping[str, Any] | None = None) -> None:
        if isinstance(params, StrategyParams):
            if not isinstance(params, self.params_model):
                raise TypeError(f"{self.name} expects {self.params_model.__name__}")
            self.params: StrategyParams = params
        else:
            self.params = self.params_model.model_validate(dict(params or {}))

    @abstractmethod
    def warmup(self) -> int:
        """Number of leading bars on which the strategy cannot take a position yet."""

    @abstractmethod
    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        """Target exposure for every bar, decided on that bar's close."""

    @abstractmethod
    def stream(self) -> StrategyStream:
        """A fresh incremental evaluator of the same logic."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.model_dump(mode="json")}


# ---------------------------------------------------------------------------------------------------------------
# The entry/exit state machine shared by the rule-based strategies.
# ---------------------------------------------------------------------------------------------------------------


def state_machine_step(state: float, entry_long: bool, exit_long: bool, entry_short: bool, exit_short: bool) -> float:
    """One bar of the position state machine.

    Precedence on a bar where several conditions hold: a long entry wins, then a short entry; an exit only
    applies to the side it belongs to (``exit_long`` does nothing while short or flat).
    """
    if entry_long:
        return 1.0
    if entry_short:
        return -1.0
    if state > 0 and exit_long:
        return 0.0
    if state < 0 and exit_short:
        return 0.0
    return state


def _last_event_value(codes: IntArray) -> FloatArray:
    """Forward-fill: each bar takes the value (0 or 1) of the most recent bar with an event (code >= 0)."""
    n = len(codes)
    idx = np.where(codes >= 0, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    out = np.zeros(n, dtype=np.float64)
    has = last >= 0
    out[has] = codes[last[has]]
    return out


def state_machine_targets(
    entry_long: np.ndarray,
    exit_long: np.ndarray,
    entry_short: np.ndarray | None = None,
    exit_short: np.ndarray | None = None,
) -> FloatArray:
    """Vectorised :func:`state_machine_step` over whole boolean arrays.

    The long and the short side are each a "set/reset" latch resolved by a forward fill of the last event: the
    long latch is set by ``entry_long`` and reset by ``exit_long`` or ``entry_short``; the short latch is set by
    ``entry_short`` (unless ``entry_long`` holds on that bar) and reset by ``exit_short`` or ``entry_long``.
    This equals the bar-by-bar machine, including its precedence rules.
    """
    el = np.asarray(entry_long, dtype=bool)
    xl = np.asarray(exit_long, dtype=bool)
    long_codes = np.where(el, 1, np.where(xl, 0, -1))
    if entry_short is None:
        return _last_event_value(long_codes)
    es = np.asarray(entry_short, dtype=bool)
    xs = np.asarray(exit_short if exit_short is not None else np.zeros_like(es), dtype=bool)
    long_codes = np.where(el, 1, np.where(es | xl, 0, -1))
    short_codes = np.where(el, 0, np.where(es, 1, np.where(xs, 0, -1)))
    return _last_event_value(long_codes) - _last_event_value(short_codes)
