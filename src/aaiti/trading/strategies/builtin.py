"""The built-in signal strategies. Each has a vectorised ``targets`` and an incremental ``stream`` that agree
bar for bar (``tests/trading/test_strategies.py``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from aaiti.trading import indicators as ind
from aaiti.trading import streaming as st
from aaiti.trading.candles import Candles, FloatArray
from aaiti.trading.strategies.base import (
    Strategy,
    StrategyParams,
    StrategyStream,
    state_machine_step,
    state_machine_targets,
)

_NAN = math.nan


# --- buy and hold -------------------------------------------------------------------------------------------


class BuyAndHoldParams(StrategyParams):
    pass


class _ConstStream:
    def __init__(self, value: float) -> None:
        self.value = value

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
        return self.value

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        return None


class BuyAndHold(Strategy):
    name: ClassVar[str] = "buy_and_hold"
    title: ClassVar[str] = "Buy and hold"
    description: ClassVar[str] = (
        "Fully long from the first bar's close (filled at the second bar's open). The benchmark."
    )
    params_model: ClassVar[type[StrategyParams]] = BuyAndHoldParams

    def warmup(self) -> int:
        return 0

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        return np.ones(len(candles), dtype=np.float64)

    def stream(self) -> StrategyStream:
        return _ConstStream(1.0)


# --- moving-average crossovers ------------------------------------------------------------------------------


class CrossoverParams(StrategyParams):
    fast: int = Field(default=10, ge=1, le=1000, description="Bars in the fast average")
    slow: int = Field(default=30, ge=2, le=2000, description="Bars in the slow average")
    short: bool = Field(default=False, description="Go short while fast < slow (otherwise stay flat)")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> CrossoverParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


def _cross_targets(f: FloatArray, s: FloatArray, short: bool) -> FloatArray:
    if short:
        return np.where(f > s, 1.0, np.where(f < s, -1.0, 0.0))
    return (f > s).astype(np.float64)


class _CrossStream:
    def __init__(self, fast: st.SMA | st.EMA, slow: st.SMA | st.EMA, short: bool) -> None:
        self._fast = fast
        self._slow = slow
        self._short = short

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
        f = self._fast.update(close)
        s = self._slow.update(close)
        if f > s:
            return 1.0
        if self._short and f < s:
            return -1.0
        return 0.0

    def get_state(self) -> dict[str, Any]:
        return {"fast": self._fast.get_state(), "slow": self._slow.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._fast.set_state(state["fast"])
        self._slow.set_state(state["slow"])


class SmaCrossover(Strategy):
    name: ClassVar[str] = "sma_crossover"
    title: ClassVar[str] = "SMA crossover"
    description: ClassVar[str] = "Long while the fast simple moving average is above the slow one."
    params_model: ClassVar[type[StrategyParams]] = CrossoverParams

    @property
    def p(self) -> CrossoverParams:
        assert isinstance(self.params, CrossoverParams)
        return self.params

    def warmup(self) -> int:
        return self.p.slow - 1

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        return _cross_targets(ind.sma(candles.close, self.p.fast), ind.sma(candles.close, self.p.slow), self.p.short)

    def stream(self) -> StrategyStream:
        return _CrossStream(st.SMA(self.p.fast), st.SMA(self.p.slow), self.p.short)


class EmaCrossover(SmaCrossover):
    name: ClassVar[str] = "ema_crossover"
    title: ClassVar[str] = "EMA crossover"
    description: ClassVar[str] = "Long while the fast exponential moving average is above the slow one."

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        return _cross_targets(ind.ema(candles.close, self.p.fast), ind.ema(candles.close, self.p.slow), self.p.short)

    def stream(self) -> StrategyStream:
        return _CrossStream(st.EMA(self.p.fast), st.EMA(self.p.slow), self.p.short)


# --- RSI mean reversion ---------------------------------------------------------------------------------------


class RsiParams(StrategyParams):
    period: int = Field(default=14, ge=2, le=500)
    lower: float = Field(default=30.0, gt=0.0, lt=100.0, description="Enter long when RSI falls below this")
    upper: float = Field(default=70.0, gt=0.0, lt=100.0, description="Enter short when RSI rises above this")
    exit_level: float = Field(default=50.0, gt=0.0, lt=100.0, description="Leave a position when RSI crosses it")
    short: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RsiParams:
        if not self.lower < self.exit_level < self.upper:
            raise ValueError("need lower < exit_level < upper")
        return self


class _RsiStream:
    def __init__(self, p: RsiParams) -> None:
        self.p = p
        self.rsi = st.RSI(p.period)
        self.state = 0.0

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
        r = self.rsi.update(close)
        p = self.p
        self.state = state_machine_step(
            self.state, r < p.lower, r > p.exit_level, p.short and r > p.upper, p.short and r < p.exit_level
        )
        return self.state

    def get_state(self) -> dict[str, Any]:
        return {"state": self.state, "rsi": self.rsi.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state = float(state["state"])
        self.rsi.set_state(state["rsi"])


class RsiMeanReversion(Strategy):
    name: ClassVar[str] = "rsi_mean_reversion"
    title: ClassVar[str] = "RSI mean reversion"
    description: ClassVar[str] = (
        "Long when RSI drops below `lower`, out when it rises above `exit_level`; optionally short above `upper`."
    )
    params_model: ClassVar[type[StrategyParams]] = RsiParams

    @property
    def p(self) -> RsiParams:
        assert isinstance(self.params, RsiParams)
        return self.params

    def warmup(self) -> int:
        return self.p.period

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        p = self.p
        r = ind.rsi(candles.close, p.period)
        if not p.short:
            return state_machine_targets(r < p.lower, r > p.exit_level)
        return state_machine_targets(r < p.lower, r > p.exit_level, r > p.upper, r < p.exit_level)

    def stream(self) -> StrategyStream:
        return _RsiStream(self.p)


# --- MACD momentum --------------------------------------------------------------------------------------------


class MacdParams(StrategyParams):
    fast: int = Field(default=12, ge=2, le=500)
    slow: int = Field(default=26, ge=3, le=1000)
    signal: int = Field(default=9, ge=1, le=500)
    short: bool = False

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


class _MacdStream:
    def __init__(self, p: MacdParams) -> None:
        self.p = p
        self.macd = st.MACD(p.fast, p.slow, p.signal)

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
        hist = self.macd.update(close)[2]
        if hist > 0:
            return 1.0
        if self.p.short and hist < 0:
            return -1.0
        return 0.0

    def get_state(self) -> dict[str, Any]:
        return {"macd": self.macd.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.macd.set_state(state["macd"])


class MacdMomentum(Strategy):
    name: ClassVar[str] = "macd_momentum"
    title: ClassVar[str] = "MACD momentum"
    description: ClassVar[str] = "Long while the MACD line is above its signal line (histogram > 0)."
    params_model: ClassVar[type[StrategyParams]] = MacdParams

    @property
    def p(self) -> MacdParams:
        assert isinstance(self.params, MacdParams)
        return self.params

    def warmup(self) -> int:
        return self.p.slow + self.p.signal - 2

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        hist = ind.macd(candles.close, self.p.fast, self.p.slow, self.p.signal)[2]
        return _cross_targets(hist, np.zeros_like(hist), self.p.short)

    def stream(self) -> StrategyStream:
        return _MacdStream(self.p)


# --- Bollinger bands ------------------------------------------------------------------------------------------


class BollingerParams(StrategyParams):
    period: int = Field(default=20, ge=2, le=1000)
    k: float = Field(default=2.0, gt=0.0, le=10.0, description="Band width in standard deviations")
    short: bool = False


class _BollingerStream:
    def __init__(self, p: BollingerParams, breakout: bool) -> None:
        self.p = p
        self.breakout = breakout
        self.bb = st.BBands(p.period, p.k)
        self.state = 0.0

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
        upper, middle, lower = self.bb.update(close)
        s = self.p.short
        if self.breakout:
            self.state = state_machine_step(
                self.state, close > upper, close < middle, s and close < lower, s and close > middle
            )
        else:
            self.state = state_machine_step(
                self.state, close < lower, close >= middle, s and close > upper, s and close <= middle
            )
        return self.state

    def get_state(self) -> dict[str, Any]:
        return {"state": self.state, "bb": self.bb.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state = float(state["state"])
        self.bb.set_state(state["bb"])


class BollingerMeanReversion(Strategy):
    name: ClassVar[str] = "bollinger_mean_reversion"
    title: ClassVar[str] = "Bollinger mean reversion"
    description: ClassVar[str] = (
        "Long when the close falls below the lower band, out when it is back at the middle band; "
        "optionally short above the upper band."
    )
    params_model: ClassVar[type[StrategyParams]] = BollingerParams
    breakout: ClassVar[bool] = False

    @property
    def p(self) -> BollingerParams:
        assert isinstance(self.params, BollingerParams)
        return self.params

    def warmup(self) -> int:
        return self.p.period - 1

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        c = candles.close
        upper, middle, lower = ind.bbands(c, self.p.period, self.p.k)
        s = self.p.short
        if self.breakout:
            if not s:
                return state_machine_targets(c > upper, c < middle)
            return state_machine_targets(c > upper, c < middle, c < lower, c > middle)
        if not s:
            return state_machine_targets(c < lower, c >= middle)
        return state_machine_targets(c < lower, c >= middle, c > upper, c <= middle)

    def stream(self) -> StrategyStream:
        return _BollingerStream(self.p, self.breakout)


class BollingerBreakout(BollingerMeanReversion):
    name: ClassVar[str] = "bollinger_breakout"
    title: ClassVar[str] = "Bollinger breakout"
    description: ClassVar[str] = (
        "Long when the close breaks above the upper band, out when it falls below the middle band; "
        "optionally short below the lower band."
    )
    breakout: ClassVar[bool] = True


# --- Donchian breakout ----------------------------------------------------------------------------------------


class DonchianParams(StrategyParams):
    entry_period: int = Field(default=20, ge=1, le=1000, description="Breakout channel length")
    exit_period: int = Field(default=10, ge=1, le=1000, description="Exit channel length")
    short: bool = False


def _prev(x: FloatArray) -> FloatArray:
    out = np.empty_like(x)
    if len(x):
        out[0] = np.nan
        out[1:] = x[:-1]
    return out


class _DonchianStream:
    def __init__(self, p: DonchianParams) -> None:
        self.p = p
        self.hi_n = st.RollingMax(p.entry_period)
        self.lo_n = st.RollingMin(p.entry_period)
        self.hi_m = st.RollingMax(p.exit_period)
        self.lo_m = st.RollingMin(p.exit_period)
        self.prev = [_NAN, _NAN, _NAN, _NAN]
        self.state = 0.0

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
        hn, ln, hm, lm = self.prev
        s = self.p.short
        self.state = state_machine_step(self.state, close > hn, close < lm, s and close < ln, s and close > hm)
        self.prev = [self.hi_n.update(high), self.lo_n.update(low), self.hi_m.update(high), self.lo_m.update(low)]
        return self.state

    def get_state(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "prev": [None if math.isnan(v) else v for v in self.prev],
            "hi_n": self.hi_n.get_state(),
            "lo_n": self.lo_n.get_state(),
            "hi_m": self.hi_m.get_state(),
            "lo_m": self.lo_m.get_state(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state = float(state["state"])
        self.prev = [_NAN if v is None else float(v) for v in state["prev"]]
        self.hi_n.set_state(state["hi_n"])
        self.lo_n.set_state(state["lo_n"])
        self.hi_m.set_state(state["hi_m"])
        self.lo_m.set_state(state["lo_m"])


class DonchianBreakout(Strategy):
    name: ClassVar[str] = "donchian_breakout"
    title: ClassVar[str] = "Donchian breakout"
    description: ClassVar[str] = (
        "Long when the close exceeds the highest high of the previous `entry_period` bars, out when it falls "
        "below the lowest low of the previous `exit_period` bars (turtle-style); optionally the mirror short."
    )
    params_model: ClassVar[type[StrategyParams]] = DonchianParams

    @property
    def p(self) -> DonchianParams:
        assert isinstance(self.params, DonchianParams)
        return self.params

    def warmup(self) -> int:
        return self.p.entry_period

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        p = self.p
        c = candles.close
        hn = _prev(ind.rolling_max(candles.high, p.entry_period))
        ln = _prev(ind.rolling_min(candles.low, p.entry_period))
        hm = _prev(ind.rolling_max(candles.high, p.exit_period))
        lm = _prev(ind.rolling_min(candles.low, p.exit_period))
        if not p.short:
            return state_machine_targets(c > hn, c < lm)
        return state_machine_targets(c > hn, c < lm, c < ln, c > hm)

    def stream(self) -> StrategyStream:
        return _DonchianStream(self.p)
