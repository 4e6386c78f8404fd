"""The fill model: how an intent becomes a fill, shared by the backtest engines and the paper broker.

Rules (see ``docs/fills.md`` for worked examples):

1. **Timing.** Strategies decide on a bar's close; the resulting market order fills at the **next bar's open**,
   never at the deciding bar's close.
2. **Slippage** is adverse: a buy fills at ``price * (1 + s)``, a sell at ``price * (1 - s)``, with
   ``s = bps / 10_000 + atr_fraction * ATR / close`` where ATR and close are those of the last *closed* bar
   before the fill (no look-ahead). While the ATR is still warming up, the last bar's ``(high - low) / close``
   stands in for ``ATR / close``.
3. **Fees**: ``|qty| * price * bps / 10_000``. Market orders (signal entries and exits, stop-loss, trailing stop,
   liquidation, end-of-test close) pay the **taker** rate and slippage; take-profit is a resting limit order and
   pays the **maker** rate with no slippage.
4. **Protective exits** are checked on every bar a position is held, including the bar it was opened on (its
   open is the entry; its high and low come after):

   - long, with ``stop = max(stop-loss, trailing stop, liquidation)`` and ``tp`` the take-profit level:
     a. ``open <= stop``  -> exit at the **open** (a gap through the stop fills at the open, not at the stop);
     b. ``open >= tp``    -> exit at the open (a gap through a limit fills at the better open price);
     c. ``low <= stop``   -> exit at ``stop``;
     d. ``high >= tp``    -> exit at ``tp``.
     When a bar touches both the stop (c) and the take-profit (d), the order inside the bar is unknown; we assume
     **the stop was hit first** (the conservative choice).
   - short: the mirror image (stop above, take-profit below, ``high`` and ``low`` swapped).

   The trailing level uses the best price *before* the bar being checked (the entry fill price and the highs,
   for a long, of earlier bars); the bar's own extreme updates it only after the check, because we cannot know
   whether the high came before the low.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

EXIT_REASONS: tuple[str, ...] = (
    "signal",
    "stop_loss",
    "trailing_stop",
    "take_profit",
    "liquidation",
    "risk_halt",
    "end_of_data",
)
SIGNAL, STOP_LOSS, TRAILING_STOP, TAKE_PROFIT, LIQUIDATION, RISK_HALT, END_OF_DATA = range(len(EXIT_REASONS))

_INF = math.inf


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeeModel(_Model):
    maker_bps: float = Field(default=0.0, ge=0.0, le=1000.0, description="Fee of resting limit orders, bps")
    taker_bps: float = Field(default=10.0, ge=0.0, le=1000.0, description="Fee of market orders, bps")

    @property
    def maker(self) -> float:
        return self.maker_bps / 10_000.0

    @property
    def taker(self) -> float:
        return self.taker_bps / 10_000.0


class SlippageModel(_Model):
    bps: float = Field(default=0.0, ge=0.0, le=1000.0, description="Fixed adverse slippage, bps")
    atr_fraction: float = Field(
        default=0.0, ge=0.0, le=10.0, description="Extra slippage as a fraction of ATR/close of the last bar"
    )
    atr_period: int = Field(default=14, ge=1, le=500)

    @property
    def base(self) -> float:
        return self.bps / 10_000.0


class StopRules(_Model):
    stop_loss: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Exit when price moves this fraction against the entry"
    )
    take_profit: float | None = Field(
        default=None, gt=0.0, le=100.0, description="Exit when price moves this fraction in favour of the entry"
    )
    trailing_stop: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Exit this fraction below the best price since entry (long)"
    )

    @property
    def active(self) -> bool:
        return self.stop_loss is not None or self.take_profit is not None or self.trailing_stop is not None


def slippage_rate(base: float, atr_fraction: float, atr_value: float, high: float, low: float, close: float) -> float:
    """Slippage fraction for fills on the bar *after* the bar whose ATR/high/low/close are given."""
    if atr_fraction == 0.0:
        return base
    vol = atr_value / close if atr_value == atr_value else (high - low) / close
    return base + atr_fraction * vol


class StopLevels:
    """Protective levels of one open position, in price units; ``side`` is ``1`` (long) or ``-1`` (short).

    Absent levels are infinities on the harmless side, so comparisons need no special cases.
    """

    __slots__ = ("extreme", "liq", "one_minus_tr", "one_plus_tr", "side", "sl", "tp", "trail_on")

    def __init__(self, side: int, trailing: float | None) -> None:
        self.trail_on = trailing is not None
        self.one_minus_tr = 1.0 - trailing if trailing is not None else 0.0
        self.one_plus_tr = 1.0 + trailing if trailing is not None else 0.0
        self.reset(side)

    def reset(self, side: int) -> None:
        """Forget all levels (the object is reused for the symbol's next position)."""
        self.side = side
        self.sl = -_INF if side > 0 else _INF
        self.tp = _INF if side > 0 else -_INF
        self.liq = -_INF if side > 0 else _INF
        self.extreme = math.nan

    def stop_level(self) -> tuple[float, int]:
        """The binding protective stop and its reason code (stop-loss wins ties, then trailing stop)."""
        if self.side > 0:
            trail = self.extreme * self.one_minus_tr if self.trail_on else -_INF
            level = max(self.sl, trail, self.liq)
        else:
            trail = self.extreme * self.one_plus_tr if self.trail_on else _INF
            level = min(self.sl, trail, self.liq)
        if level == self.sl:
            return level, STOP_LOSS
        if level == trail:
            return level, TRAILING_STOP
        return level, LIQUIDATION


class ExitFill:
    __slots__ = ("maker", "price", "reason")

    def __init__(self, price: float, reason: int, maker: bool) -> None:
        self.price = price
        self.reason = reason
        self.maker = maker


class FillModel:
    """Prices fills and checks protective exits. Pure: no state besides its configuration."""

    __slots__ = ("atr_fraction", "fees", "maker", "slip_base", "slippage", "stops", "taker")

    def __init__(self, fees: FeeModel, slippage: SlippageModel, stops: StopRules) -> None:
        self.fees = fees
        self.slippage = slippage
        self.stops = stops
        self.maker = fees.maker
        self.taker = fees.taker
        self.slip_base = slippage.base
        self.atr_fraction = slippage.atr_fraction

    @staticmethod
    def market_price(price: float, side: int, slip: float) -> float:
        """Fill price of a market order: ``side`` 1 buys at ``price * (1 + slip)``, -1 sells at
        ``price * (1 - slip)``."""
        return price * (1.0 + slip) if side > 0 else price * (1.0 - slip)

    def levels_for_entry(self, side: int, avg_price: float, levels: StopLevels | None = None) -> StopLevels:
        """Stop-loss and take-profit levels of a position with average entry price ``avg_price``."""
        if levels is None:
            lv = StopLevels(side, self.stops.trailing_stop)
        else:
            lv = levels
            lv.side = side
        sl = self.stops.stop_loss
        tp = self.stops.take_profit
        if side > 0:
            if sl is not None:
                lv.sl = avg_price * (1.0 - sl)
            if tp is not None:
                lv.tp = avg_price * (1.0 + tp)
        else:
            if sl is not None:
                lv.sl = avg_price * (1.0 + sl)
            if tp is not None:
                lv.tp = avg_price * (1.0 - tp)
        return lv

    @staticmethod
    def check_exit(
        levels: StopLevels, open_: float, high: float, low: float, slip: float
    ) -> tuple[float, int, bool] | None:
        """Apply rule 4 to one bar. Returns ``(price, reason_code, is_maker)`` or ``None`` (position survives; the
        trailing extreme is then updated with this bar)."""
        stop, reason = levels.stop_level()
        tp = levels.tp
        if levels.side > 0:
            if open_ <= stop:
                return open_ * (1.0 - slip), reason, False
            if open_ >= tp:
                return open_, TAKE_PROFIT, True
            if low <= stop:
                return stop * (1.0 - slip), reason, False
            if high >= tp:
                return tp, TAKE_PROFIT, True
            if high > levels.extreme:
                levels.extreme = high
            return None
        if open_ >= stop:
            return open_ * (1.0 + slip), reason, False
        if open_ <= tp:
            return open_, TAKE_PROFIT, True
        if high >= stop:
            return stop * (1.0 + slip), reason, False
        if low <= tp:
            return tp, TAKE_PROFIT, True
        if low < levels.extreme:
            levels.extreme = low
        return None
