"""One-bar-at-a-time versions of the indicators the built-in strategies and fill rules need.

Each class's ``update`` performs exactly the floating-point operations, in the same order, as the vectorised
function in :mod:`aaiti.trading.indicators`, so a streamed value is bit-for-bit equal to the vectorised value at
the same bar (tested on every bundled data set). This is what lets a paper bot that sees one candle at a time take
the same decisions as the backtest of the same period.

Every class has ``get_state()`` (a JSON-compatible dict: undefined values are ``None``, never NaN) and
``set_state(state)`` so a bot can persist and resume it. ``update`` returns ``math.nan`` during warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_NAN = math.nan


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


def _num(x: Any) -> float:
    return _NAN if x is None else float(x)


class RollingSum:
    """Sum of the last ``period`` values as the difference of a running total (as ``indicators.rolling_sum``)."""

    __slots__ = ("_cs", "_i", "_ring", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._cs = 0.0
        self._i = 0
        self._ring: list[float] = [0.0] * period

    def update(self, x: float) -> float:
        cs = self._cs + x
        self._cs = cs
        i = self._i
        self._i = i + 1
        pos = i % self.period
        old = self._ring[pos]
        self._ring[pos] = cs
        if i >= self.period:
            return cs - old
        if i == self.period - 1:
            return cs
        return _NAN

    def get_state(self) -> dict[str, Any]:
        return {"cs": self._cs, "i": self._i, "ring": list(self._ring)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._cs = float(state["cs"])
        self._i = int(state["i"])
        self._ring = [float(v) for v in state["ring"]]


class SMA(RollingSum):
    """As ``indicators.sma``: the rolling sum (running-total difference) divided by the period."""

    __slots__ = ()

    def update(self, x: float) -> float:
        cs = self._cs + x
        self._cs = cs
        i = self._i
        self._i = i + 1
        pos = i % self.period
        old = self._ring[pos]
        self._ring[pos] = cs
        if i >= self.period:
            return (cs - old) / self.period
        if i == self.period - 1:
            return cs / self.period
        return _NAN


class EMA:
    """As ``indicators.ema``: SMA seed over the first ``period`` values, then ``((x - prev) * k) + prev``."""

    __slots__ = ("_k", "_n", "_prev", "_total", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._k = 2.0 / (period + 1)
        self._n = 0
        self._total = 0.0
        self._prev = _NAN

    def update(self, x: float) -> float:
        if self._n >= self.period:
            self._prev = ((x - self._prev) * self._k) + self._prev
            return self._prev
        self._n += 1
        self._total += x
        if self._n == self.period:
            self._prev = self._total / self.period
            return self._prev
        return _NAN

    def get_state(self) -> dict[str, Any]:
        return {"n": self._n, "total": self._total, "prev": _opt(self._prev)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._n = int(state["n"])
        self._total = float(state["total"])
        self._prev = _num(state["prev"])


class RSI:
    """As ``indicators.rsi`` (``signed=False``) or ``indicators.cmo`` (``signed=True``)."""

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "signed")

    def __init__(self, period: int, signed: bool = False) -> None:
        self.period = period
        self.signed = signed
        self._n = 0
        self._prev = _NAN
        self._gain = 0.0
        self._loss = 0.0

    def _value(self) -> float:
        total = self._gain + self._loss
        if total == 0.0:
            return 0.0
        if self.signed:
            return 100.0 * ((self._gain - self._loss) / total)
        return 100.0 * (self._gain / total)

    def update(self, x: float) -> float:
        n = self._n
        self._n = n + 1
        if n == 0:
            self._prev = x
            return _NAN
        d = x - self._prev
        self._prev = x
        p = self.period
        if n <= p:
            if d < 0:
                self._loss -= d
            else:
                self._gain += d
            if n < p:
                return _NAN
            self._loss /= p
            self._gain /= p
            return self._value()
        self._loss *= p - 1
        self._gain *= p - 1
        if d < 0:
            self._loss -= d
        else:
            self._gain += d
        self._loss /= p
        self._gain /= p
        return self._value()

    def get_state(self) -> dict[str, Any]:
        return {"n": self._n, "prev": _opt(self._prev), "gain": self._gain, "loss": self._loss}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._n = int(state["n"])
        self._prev = _num(state["prev"])
        self._gain = float(state["gain"])
        self._loss = float(state["loss"])


class MACD:
    """As ``indicators.macd``: returns ``(macd, signal, hist)``, NaN until bar ``slow + signal - 2``."""

    __slots__ = ("_fast", "_i", "_sig", "_slow", "fast", "signal", "slow")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast = fast
        self.slow = slow
        self.signal = signal
        self._fast = EMA(fast)
        self._slow = EMA(slow)
        self._sig = EMA(signal)
        self._i = 0

    def update(self, x: float) -> tuple[float, float, float]:
        i = self._i
        self._i = i + 1
        s = self._slow.update(x)
        if i < self.slow - self.fast:
            return _NAN, _NAN, _NAN
        f = self._fast.update(x)
        if i < self.slow - 1:
            return _NAN, _NAN, _NAN
        line = f - s
        sig = self._sig.update(line)
        if i < self.slow + self.signal - 2:
            return _NAN, _NAN, _NAN
        return line, sig, line - sig

    def get_state(self) -> dict[str, Any]:
        return {
            "i": self._i,
            "fast": self._fast.get_state(),
            "slow": self._slow.get_state(),
            "sig": self._sig.get_state(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._i = int(state["i"])
        self._fast.set_state(state["fast"])
        self._slow.set_state(state["slow"])
        self._sig.set_state(state["sig"])


class Window:
    """The last ``period`` values, oldest first."""

    __slots__ = ("period", "values")

    def __init__(self, period: int) -> None:
        self.period = period
        self.values: list[float] = []

    def push(self, x: float) -> bool:
        """Append ``x``; True once the window is full."""
        v = self.values
        v.append(x)
        if len(v) > self.period:
            del v[0]
        return len(v) == self.period

    def get_state(self) -> dict[str, Any]:
        return {"values": list(self.values)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.values = [float(v) for v in state["values"]]


class RollingStd:
    """As ``indicators.rolling_std``: window mean and squared deviations summed oldest first."""

    __slots__ = ("_win", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._win = Window(period)

    def update(self, x: float) -> float:
        if not self._win.push(x):
            return _NAN
        vals = self._win.values
        total = vals[0]
        for v in vals[1:]:
            total += v
        mean = total / self.period
        d = vals[0] - mean
        acc = d * d
        for v in vals[1:]:
            d = v - mean
            acc += d * d
        std = math.sqrt(acc / self.period)
        # Same flat-window rule as indicators.rolling_std.
        if std <= 1e-12 * abs(mean):
            std = 0.0
        return std

    def get_state(self) -> dict[str, Any]:
        return self._win.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._win.set_state(state)


class BBands:
    """As ``indicators.bbands``: returns ``(upper, middle, lower)``; the middle band is the running-total SMA."""

    __slots__ = ("_sma", "_std", "k")

    def __init__(self, period: int, k: float) -> None:
        self.k = k
        self._sma = SMA(period)
        self._std = RollingStd(period)

    def update(self, x: float) -> tuple[float, float, float]:
        middle = self._sma.update(x)
        width = self._std.update(x) * self.k
        return middle + width, middle, middle - width

    def get_state(self) -> dict[str, Any]:
        return {"sma": self._sma.get_state(), "std": self._std.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._sma.set_state(state["sma"])
        self._std.set_state(state["std"])


class RollingMax:
    __slots__ = ("_win",)

    def __init__(self, period: int) -> None:
        self._win = Window(period)

    def update(self, x: float) -> float:
        return max(self._win.values) if self._win.push(x) else _NAN

    def get_state(self) -> dict[str, Any]:
        return self._win.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._win.set_state(state)


class RollingMin:
    __slots__ = ("_win",)

    def __init__(self, period: int) -> None:
        self._win = Window(period)

    def update(self, x: float) -> float:
        return min(self._win.values) if self._win.push(x) else _NAN

    def get_state(self) -> dict[str, Any]:
        return self._win.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._win.set_state(state)


class ATR:
    """As ``indicators.atr``: true range from bar 1, SMA seed at bar ``period``, then Wilder smoothing."""

    __slots__ = ("_i", "_prev", "_prev_close", "_total", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._i = 0
        self._prev_close = _NAN
        self._total = 0.0
        self._prev = _NAN

    def update(self, high: float, low: float, close: float) -> float:
        i = self._i
        self._i = i + 1
        pc = self._prev_close
        self._prev_close = close
        if i == 0:
            return _NAN
        tr = max(max(high - low, abs(high - pc)), abs(low - pc))
        p = self.period
        if i < p:
            self._total += tr
            return _NAN
        if i == p:
            self._total += tr
            self._prev = self._total / p
            return self._prev
        self._prev = ((self._prev * (p - 1)) + tr) / p
        return self._prev

    def get_state(self) -> dict[str, Any]:
        return {"i": self._i, "prev_close": _opt(self._prev_close), "total": self._total, "prev": _opt(self._prev)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._i = int(state["i"])
        self._prev_close = _num(state["prev_close"])
        self._total = float(state["total"])
        self._prev = _num(state["prev"])


class ReturnsVolatility:
    """As ``indicators.returns_volatility``: population std of the last ``period`` close-to-close returns."""

    __slots__ = ("_prev", "_std")

    def __init__(self, period: int) -> None:
        self._prev = _NAN
        self._std = RollingStd(period)

    def update(self, close: float) -> float:
        prev = self._prev
        self._prev = close
        if math.isnan(prev):
            return _NAN
        return self._std.update(close / prev - 1.0)

    def get_state(self) -> dict[str, Any]:
        return {"prev": _opt(self._prev), "std": self._std.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._prev = _num(state["prev"])
        self._std.set_state(state["std"])
