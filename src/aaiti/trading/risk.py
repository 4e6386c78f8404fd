"""Account limits and risk halts.

**Spot account** (default: ``allow_short=False`` and ``max_leverage=1``): only long positions; a buy is cut to
what the cash pays for, fees included, so cash never goes negative. Negative target exposures mean "flat".

**Margin account** (``allow_short=True`` or ``max_leverage > 1``): long and short positions with symmetric
accounting (a short sale credits its proceeds to cash, buying it back debits them), each position's notional
capped at ``max_leverage * equity`` when it is sized; cash may go negative (borrowed). Each position gets a
**liquidation level** when it is sized: the price at which its loss would equal the account's equity at that
moment, ``avg - E/qty`` for a long and ``avg + E/|qty|`` for a short. It works as one more protective stop
(reason ``liquidation``); cross-margining between positions, funding and borrow costs are not modelled.

**Halts** (checked on each bar's close, acted on at the next open, like any decision):

- ``max_drawdown``: when equity falls this fraction below its running peak (bar closes, the initial cash
  included), every position is closed (reason ``risk_halt``) and the account stops trading for good -- the
  kill switch.
- ``max_daily_loss``: when equity falls this fraction below its value at the start of the UTC day (the last
  close of the previous day; the initial cash on the first day), every position is closed and no order is
  placed until the first bar of the next UTC day, whose close re-applies the strategy's current target.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

DAY_MS = 86_400_000


class RiskLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drawdown: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Kill switch: halt for good at this drawdown from the peak"
    )
    max_daily_loss: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Halt until the next UTC day at this loss within a day"
    )

    @property
    def active(self) -> bool:
        return self.max_drawdown is not None or self.max_daily_loss is not None


def liquidation_level(side: int, avg_price: float, qty: float, equity: float) -> float:
    """Price at which a position's loss equals ``equity``; -inf/+inf (never) when the equity is not positive
    or the level would be non-positive for a long."""
    if qty == 0.0 or not equity > 0.0:
        return -math.inf if side > 0 else math.inf
    if side > 0:
        level = avg_price - equity / qty
        return level if level > 0.0 else -math.inf
    return avg_price + equity / -qty


class HaltState:
    """Tracks the halt rules bar by bar. ``on_close`` returns True when a halt starts on this bar."""

    __slots__ = ("day", "day_start_equity", "halted_until_day", "killed", "last_equity", "limits", "peak")

    def __init__(self, limits: RiskLimits, initial_equity: float) -> None:
        self.limits = limits
        self.peak = initial_equity
        self.day = -1
        self.day_start_equity = initial_equity
        self.last_equity = initial_equity
        self.killed = False
        self.halted_until_day = -1

    def start_bar(self, ts: int) -> bool:
        """Call before deciding on the bar with open time ``ts``. Returns True when a daily halt just ended (the
        engine then re-applies the current target)."""
        day = ts // DAY_MS
        resumed = False
        if day != self.day:
            if self.day >= 0:
                self.day_start_equity = self.last_equity
            self.day = day
            if self.halted_until_day >= 0 and day >= self.halted_until_day:
                self.halted_until_day = -1
                resumed = not self.killed
        return resumed

    @property
    def halted(self) -> bool:
        return self.killed or self.halted_until_day >= 0

    def on_close(self, equity: float) -> bool:
        self.last_equity = equity
        if equity > self.peak:
            self.peak = equity
        if self.halted:
            return False
        dd = self.limits.max_drawdown
        if dd is not None and equity <= self.peak * (1.0 - dd):
            self.killed = True
            return True
        dl = self.limits.max_daily_loss
        if dl is not None and equity <= self.day_start_equity * (1.0 - dl):
            self.halted_until_day = self.day + 1
            return True
        return False

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "peak": self.peak,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "last_equity": self.last_equity,
            "killed": self.killed,
            "halted_until_day": self.halted_until_day,
        }

    def load(self, d: dict[str, float | int | bool]) -> None:
        self.peak = float(d["peak"])
        self.day = int(d["day"])
        self.day_start_equity = float(d["day_start_equity"])
        self.last_equity = float(d["last_equity"])
        self.killed = bool(d["killed"])
        self.halted_until_day = int(d["halted_until_day"])
