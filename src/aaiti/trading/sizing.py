"""Position sizing: how much of the account a target exposure of 1.0 means.

The engine sizes an order when it fills (at the next bar's open), from the account equity marked at that open
(``E``), the symbol's allocation weight ``w`` (``1/N`` for ``N`` symbols unless set), the target exposure ``t``
and the fill price ``P`` (slippage included):

- ``fixed_fraction``:    notional = |t| * fraction * w * E
- ``fixed_notional``:    notional = |t| * notional          (quote currency, independent of equity)
- ``volatility_target``: notional = |t| * min(max_fraction, target_vol / realised_vol) * w * E, where
  ``realised_vol`` is the population std of the last ``lookback`` close-to-close returns up to the bar before
  the fill, annualised with ``sqrt(periods_per_year)``. While it is undefined (warm-up) no position is taken.
- ``kelly``:             notional = |t| * clamp(multiplier * k, 0, cap) * w * E, with the Kelly fraction
  ``k = W - (1 - W) / R`` from the trades closed so far (``W`` share of winning trades, ``R`` average winning
  return over average losing return). Until ``min_trades`` trades have closed, ``fallback_fraction`` is used.

Quantity = sign(t) * notional / P. The engine then applies the account limits (cash for spot buys, leverage for
margin accounts); see :mod:`aaiti.trading.risk`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedFraction(_Model):
    kind: Literal["fixed_fraction"] = "fixed_fraction"
    fraction: float = Field(default=1.0, gt=0.0, le=10.0, description="Share of equity at exposure 1.0")


class FixedNotional(_Model):
    kind: Literal["fixed_notional"] = "fixed_notional"
    notional: float = Field(gt=0.0, le=1e12, description="Quote-currency value at exposure 1.0")


class VolatilityTarget(_Model):
    kind: Literal["volatility_target"] = "volatility_target"
    target_vol: float = Field(default=0.5, gt=0.0, le=10.0, description="Annualised volatility aimed for")
    lookback: int = Field(default=30, ge=2, le=1000, description="Returns in the realised-volatility window")
    max_fraction: float = Field(default=1.0, gt=0.0, le=10.0, description="Cap on the share of equity")


class KellyCapped(_Model):
    kind: Literal["kelly"] = "kelly"
    multiplier: float = Field(default=0.5, gt=0.0, le=1.0, description="Fraction of full Kelly (0.5 = half)")
    cap: float = Field(default=0.25, gt=0.0, le=1.0, description="Largest share of equity")
    min_trades: int = Field(default=20, ge=1, le=10_000)
    fallback_fraction: float = Field(default=0.1, ge=0.0, le=1.0, description="Share used before min_trades")


Sizing = Annotated[FixedFraction | FixedNotional | VolatilityTarget | KellyCapped, Field(discriminator="kind")]


class KellyStats:
    """Running win/loss statistics of closed trades, in the order they closed."""

    __slots__ = ("loss_sum", "losses", "n", "win_sum", "wins")

    def __init__(self) -> None:
        self.n = 0
        self.wins = 0
        self.losses = 0
        self.win_sum = 0.0
        self.loss_sum = 0.0

    def add(self, trade_return: float) -> None:
        self.n += 1
        if trade_return > 0:
            self.wins += 1
            self.win_sum += trade_return
        elif trade_return < 0:
            self.losses += 1
            self.loss_sum -= trade_return

    def fraction(self) -> float:
        """Full Kelly fraction ``W - (1 - W) / R``; ``W`` when there has been no loss, 0 with no win."""
        if self.n == 0 or self.wins == 0:
            return 0.0
        w = self.wins / self.n
        if self.losses == 0:
            return w
        r = (self.win_sum / self.wins) / (self.loss_sum / self.losses)
        return w - (1.0 - w) / r

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "wins": self.wins,
            "losses": self.losses,
            "win_sum": self.win_sum,
            "loss_sum": self.loss_sum,
        }

    @classmethod
    def from_dict(cls, d: dict[str, float | int]) -> KellyStats:
        k = cls()
        k.n = int(d["n"])
        k.wins = int(d["wins"])
        k.losses = int(d["losses"])
        k.win_sum = float(d["win_sum"])
        k.loss_sum = float(d["loss_sum"])
        return k


def equity_fraction(
    sizing: FixedFraction | FixedNotional | VolatilityTarget | KellyCapped,
    realised_vol: float,
    sqrt_periods_per_year: float,
    kelly: KellyStats,
) -> float:
    """Share of (weighted) equity that exposure 1.0 means, for the equity-relative sizing rules.

    ``realised_vol`` is the per-bar return std at the bar before the fill (NaN while undefined).
    """
    if isinstance(sizing, FixedFraction):
        return sizing.fraction
    if isinstance(sizing, VolatilityTarget):
        if math.isnan(realised_vol):
            return 0.0
        annual = realised_vol * sqrt_periods_per_year
        if annual <= 0.0:
            return sizing.max_fraction
        return min(sizing.max_fraction, sizing.target_vol / annual)
    if isinstance(sizing, KellyCapped):
        if kelly.n < sizing.min_trades:
            return sizing.fallback_fraction
        return min(sizing.cap, max(0.0, sizing.multiplier * kelly.fraction()))
    raise TypeError("fixed_notional sizing is not a fraction of equity")
