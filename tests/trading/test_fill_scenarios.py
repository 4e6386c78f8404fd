"""Hand-built candle scenarios with known fills, exit reasons and P&L (the fill rules of docs/fills.md).

Every scenario runs through the event engine and, unless it uses risk halts, the vectorised engine too; the two
must agree bit for bit (``run_both``) and match the expected trades. Unless a scenario says otherwise: initial cash
1000, no fees, no slippage, fixed fraction 1 (all in), spot account, daily bars, and bar 0 is
``(100, 100, 100, 100)`` so a target decided on bar 0's close fills at bar 1's open.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from aaiti.trading.engine import BacktestConfig, BacktestResult
from aaiti.trading.portfolio import ENTRY

from .helpers import DAY, FixedTargets, make_candles, run_both

B0 = (100.0, 100.0, 100.0, 100.0)
FLAT100 = (100.0, 100.0, 100.0, 100.0)


@dataclass
class Scenario:
    name: str
    bars: list[tuple[float, float, float, float]]
    targets: list[float]
    config: dict[str, Any] = field(default_factory=dict)
    # (side, entry_bar, entry_price, exit_bar, exit_price, reason, pnl)
    trades: list[tuple[int, int, float, int, float, str, float]] = field(default_factory=list)
    check: Callable[[BacktestResult], None] | None = None
    step_ms: int = DAY


def q_fee(price: float, fee: float) -> float:
    """Quantity that 1000 of cash buys at ``price`` with taker fee rate ``fee``."""
    return 1000.0 / (price * (1.0 + fee))


def _no_fills(r: BacktestResult) -> None:
    assert len(r.fill_log) == 0
    assert np.all(r.equity == 1000.0)


def _fills(count: int) -> Callable[[BacktestResult], None]:
    def check(r: BacktestResult) -> None:
        assert len(r.fill_log) == count

    return check


def _open_position(qty: float, entry: float, mark: float) -> Callable[[BacktestResult], None]:
    def check(r: BacktestResult) -> None:
        assert len(r.open_positions) == 1
        p = r.open_positions[0]
        assert p["qty"] == pytest.approx(qty, rel=1e-9)
        assert p["entry_price"] == pytest.approx(entry, rel=1e-12)
        assert p["unrealized_pnl"] == pytest.approx(qty * (mark - entry), rel=1e-9)

    return check


def _cash_near_zero(r: BacktestResult) -> None:
    fills = r.fill_log.columns()
    assert fills["reason"] == [ENTRY]
    # After an all-in buy, cash is exactly what rounding left: never below zero, and tiny.
    cash = r.equity[1] - r.positions[0, 1] * 101.0
    assert 0.0 <= cash < 1e-6


def _cash_negative_with_margin(r: BacktestResult) -> None:
    cash_after_buy = r.equity[1] - r.positions[0, 1] * 101.0
    assert cash_after_buy == pytest.approx(-1000.0)


def _reverse(r: BacktestResult) -> None:
    f = r.fill_log.columns()
    assert f["bar"] == [1, 3, 3]
    assert f["side"] == [1, -1, -1]
    assert f["price"] == [100.0, 110.0, 110.0]
    assert r.positions[0, -1] == pytest.approx(-10.0)


def _vol_target(r: BacktestResult) -> None:
    closes = np.array([100.0, 102.0, 99.0, 103.0])
    rets = closes[1:] / closes[:-1] - 1.0
    sigma = float(np.sqrt(np.mean((rets - rets.mean()) ** 2))) * math.sqrt(365.0)
    frac = min(1.0, 0.2 / sigma)
    f = r.fill_log.columns()
    assert f["bar"] == [4]
    assert f["qty"][0] == pytest.approx(frac * 1000.0 / 104.0, rel=1e-12)


def _halt_daily(r: BacktestResult) -> None:
    f = r.fill_log.columns()
    # entry, halt exit, re-entry on the first bar after the first close of the next UTC day
    assert f["bar"] == [1, 2, 5]


SCENARIOS: list[Scenario] = [
    Scenario(
        "signal round trip: entry at next open, exit at next open",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        trades=[(1, 1, 100, 3, 110, "signal", 100.0)],
    ),
    Scenario(
        "a decision on the last bar never fills (no same-bar close fills)",
        [B0, (100, 101, 99, 100), (100, 101, 99, 100)],
        [0, 0, 1],
        check=_no_fills,
    ),
    Scenario(
        "taker fees on entry and exit",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"fees": {"taker_bps": 10}},
        trades=[
            (
                1,
                1,
                100,
                3,
                110,
                "signal",
                q_fee(100, 0.001) * 10 - q_fee(100, 0.001) * 100 * 0.001 - q_fee(100, 0.001) * 110 * 0.001,
            )
        ],
    ),
    Scenario(
        "fixed slippage is adverse on both sides",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"slippage": {"bps": 10}},
        trades=[(1, 1, 100.1, 3, 109.89, "signal", 1000 / 100.1 * (109.89 - 100.1))],
    ),
    Scenario(
        "stop-loss inside the bar fills at the stop",
        [B0, (100, 101, 99, 100), (99, 100, 94, 96), (96, 97, 95, 96)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 2, 95, "stop_loss", -50.0)],
    ),
    Scenario(
        "gap below the stop fills at the open",
        [B0, (100, 101, 99, 100), (90, 92, 88, 91), (91, 92, 90, 91)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 2, 90, "stop_loss", -100.0)],
    ),
    Scenario(
        "take-profit inside the bar fills at the limit",
        [B0, (100, 101, 99, 100), (101, 111, 100, 105), (105, 106, 104, 105)],
        [1, 1, 1, 1],
        {"stops": {"take_profit": 0.10}},
        trades=[(1, 1, 100, 2, 110, "take_profit", 100.0)],
    ),
    Scenario(
        "gap above the take-profit fills at the (better) open",
        [B0, (100, 101, 99, 100), (115, 116, 114, 115), (115, 116, 114, 115)],
        [1, 1, 1, 1],
        {"stops": {"take_profit": 0.10}},
        trades=[(1, 1, 100, 2, 115, "take_profit", 150.0)],
    ),
    Scenario(
        "stop and take-profit touched in one bar: the stop is assumed first",
        [B0, (100, 101, 99, 100), (100, 112, 94, 100), (100, 101, 99, 100)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05, "take_profit": 0.10}},
        trades=[(1, 1, 100, 2, 95, "stop_loss", -50.0)],
    ),
    Scenario(
        "both touched but the open gaps above the take-profit: filled at the open",
        [B0, (100, 101, 99, 100), (112, 113, 94, 100), (100, 101, 99, 100)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05, "take_profit": 0.10}},
        trades=[(1, 1, 100, 2, 112, "take_profit", 120.0)],
    ),
    Scenario(
        "both touched and the open gaps below the stop: filled at the open",
        [B0, (100, 101, 99, 100), (93, 112, 90, 100), (100, 101, 99, 100)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05, "take_profit": 0.10}},
        trades=[(1, 1, 100, 2, 93, "stop_loss", -70.0)],
    ),
    Scenario(
        "stop-loss hit on the entry bar itself",
        [B0, (100, 101, 94, 97), (97, 98, 96, 97)],
        [1, 1, 1],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 1, 95, "stop_loss", -50.0)],
    ),
    Scenario(
        "take-profit hit on the entry bar itself",
        [B0, (100, 111, 99, 105), (105, 106, 104, 105)],
        [1, 1, 1],
        {"stops": {"take_profit": 0.10}},
        trades=[(1, 1, 100, 1, 110, "take_profit", 100.0)],
    ),
    Scenario(
        "trailing stop follows the highest high",
        [B0, (100, 101, 99, 100), (101, 120, 110, 118), (118, 119, 107, 108), (108, 109, 107, 108)],
        [1, 1, 1, 1, 1],
        {"stops": {"trailing_stop": 0.10}},
        trades=[(1, 1, 100, 3, 108, "trailing_stop", 80.0)],
    ),
    Scenario(
        "trailing level uses earlier bars only; the next open gaps through it",
        [B0, FLAT100, (100, 120, 105, 110), (106, 107, 105, 106), (106, 107, 105, 106)],
        [1, 1, 1, 1, 1],
        {"stops": {"trailing_stop": 0.10}},
        trades=[(1, 1, 100, 3, 106, "trailing_stop", 60.0)],
    ),
    Scenario(
        "the tighter of stop-loss and trailing stop binds (stop-loss here)",
        [B0, FLAT100, (100, 101, 94, 97), (97, 98, 96, 97)],
        [1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05, "trailing_stop": 0.10}},
        trades=[(1, 1, 100, 2, 95, "stop_loss", -50.0)],
    ),
    Scenario(
        "the tighter of stop-loss and trailing stop binds (trailing here)",
        [B0, FLAT100, (100, 120, 110, 118), (115, 116, 107, 110), (110, 111, 109, 110)],
        [1, 1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05, "trailing_stop": 0.10}},
        trades=[(1, 1, 100, 3, 108, "trailing_stop", 80.0)],
    ),
    Scenario(
        "after a stop the position is not re-entered while the target is unchanged",
        [B0, FLAT100, (99, 100, 94, 96), (96, 97, 95, 96), (96, 97, 95, 96)],
        [1, 1, 1, 1, 1],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 2, 95, "stop_loss", -50.0)],
        check=_fills(2),
    ),
    Scenario(
        "re-entry once the target changes again",
        [B0, FLAT100, (99, 100, 94, 96), (96, 97, 95, 96), (97, 98, 96, 97), (98, 99, 97, 98)],
        [1, 1, 1, 0, 1, 1],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 2, 95, "stop_loss", -50.0)],
        check=_open_position(950.0 / 98.0, 98.0, 98.0),
    ),
    Scenario(
        "a pending exit fills at the open before the stop is checked",
        [B0, FLAT100, (99, 100, 90, 95), (95, 96, 94, 95)],
        [1, 0, 0, 0],
        {"stops": {"stop_loss": 0.05}},
        trades=[(1, 1, 100, 2, 99, "signal", -10.0)],
    ),
    Scenario(
        "short round trip (margin account)",
        [B0, (100, 102, 99, 101), (101, 102, 95, 96), (90, 91, 89, 90)],
        [-1, -1, 0, 0],
        {"allow_short": True},
        trades=[(-1, 1, 100, 3, 90, "signal", 100.0)],
    ),
    Scenario(
        "short stop-loss above the entry",
        [B0, FLAT100, (101, 106, 100, 104), (104, 105, 103, 104)],
        [-1, -1, -1, -1],
        {"allow_short": True, "stops": {"stop_loss": 0.05}},
        trades=[(-1, 1, 100, 2, 105, "stop_loss", -50.0)],
    ),
    Scenario(
        "short stop gapped over fills at the open",
        [B0, FLAT100, (108, 109, 107, 108), (108, 109, 107, 108)],
        [-1, -1, -1, -1],
        {"allow_short": True, "stops": {"stop_loss": 0.05}},
        trades=[(-1, 1, 100, 2, 108, "stop_loss", -80.0)],
    ),
    Scenario(
        "short take-profit below the entry",
        [B0, FLAT100, (95, 96, 89, 92), (92, 93, 91, 92)],
        [-1, -1, -1, -1],
        {"allow_short": True, "stops": {"take_profit": 0.10}},
        trades=[(-1, 1, 100, 2, 90, "take_profit", 100.0)],
    ),
    Scenario(
        "short with both levels touched: stop first",
        [B0, FLAT100, (100, 106, 89, 100), (100, 101, 99, 100)],
        [-1, -1, -1, -1],
        {"allow_short": True, "stops": {"stop_loss": 0.05, "take_profit": 0.10}},
        trades=[(-1, 1, 100, 2, 105, "stop_loss", -50.0)],
    ),
    Scenario(
        "short trailing stop follows the lowest low",
        [B0, FLAT100, (95, 96, 80, 85), (85, 89, 84, 88), (88, 89, 87, 88)],
        [-1, -1, -1, -1, -1],
        {"allow_short": True, "stops": {"trailing_stop": 0.10}},
        trades=[(-1, 1, 100, 3, 88, "trailing_stop", 120.0)],
    ),
    Scenario(
        "reversal: close the long and open the short at the same open",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, -1, -1],
        {"allow_short": True},
        trades=[(1, 1, 100, 3, 110, "signal", 100.0)],
        check=_reverse,
    ),
    Scenario(
        "a spot account treats negative targets as flat",
        [B0, (100, 101, 99, 100), (100, 101, 99, 100)],
        [-1, -1, -1],
        check=_no_fills,
    ),
    Scenario(
        "fractional target: half the equity",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [0.5, 0.5, 0, 0],
        trades=[(1, 1, 100, 3, 110, "signal", 50.0)],
    ),
    Scenario(
        "reducing the target closes part of the position (trade per closed part)",
        [B0, FLAT100, (110, 111, 109, 110), (115, 116, 114, 115), (120, 121, 119, 120)],
        [1, 0.5, 0.5, 0, 0],
        trades=[(1, 1, 100, 2, 110, "signal", 50.0), (1, 1, 100, 4, 120, "signal", 100.0)],
    ),
    Scenario(
        "increasing the target averages the entry price",
        [B0, FLAT100, (120, 121, 119, 120), (125, 126, 124, 125), (130, 131, 129, 130)],
        [0.5, 1, 1, 0, 0],
        trades=[(1, 1, 1000.0 / (5 + 500.0 / 120), 4, 130, "signal", 150.0 + 500.0 / 120 * 10)],
    ),
    Scenario(
        "all-in buy with fees leaves cash at (not below) zero",
        [B0, (100, 102, 99, 101), (101, 102, 100, 101)],
        [1, 1, 1],
        {"fees": {"taker_bps": 10}},
        check=_cash_near_zero,
    ),
    Scenario(
        "fixed notional sizing",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"sizing": {"kind": "fixed_notional", "notional": 500}},
        trades=[(1, 1, 100, 3, 110, "signal", 50.0)],
    ),
    Scenario(
        "fixed notional above the cash is cut to the cash on a spot account",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"sizing": {"kind": "fixed_notional", "notional": 2000}},
        trades=[(1, 1, 100, 3, 110, "signal", 100.0)],
    ),
    Scenario(
        "2x leverage on a margin account borrows cash",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"max_leverage": 2, "sizing": {"kind": "fixed_fraction", "fraction": 2}},
        trades=[(1, 1, 100, 3, 110, "signal", 200.0)],
        check=_cash_negative_with_margin,
    ),
    Scenario(
        "leveraged long is liquidated where its loss equals the equity",
        [B0, FLAT100, (60, 61, 45, 50), (50, 51, 49, 50)],
        [1, 1, 1, 1],
        {"max_leverage": 2, "sizing": {"kind": "fixed_fraction", "fraction": 2}},
        trades=[(1, 1, 100, 2, 50, "liquidation", -1000.0)],
    ),
    Scenario(
        "short is liquidated when its loss equals the equity",
        [B0, FLAT100, (150, 210, 140, 205), (205, 206, 204, 205)],
        [-1, -1, -1, -1],
        {"allow_short": True},
        trades=[(-1, 1, 100, 2, 200, "liquidation", -1000.0)],
    ),
    Scenario(
        "volatility-scaled slippage uses the last bar's range while ATR warms up",
        [(100, 104, 96, 100), (100, 102, 98, 100), (110, 111, 109, 110)],
        [1, 0, 0],
        {"slippage": {"atr_fraction": 0.5, "atr_period": 14}},
        trades=[(1, 1, 104.0, 2, 107.8, "signal", 1000.0 / 104.0 * (107.8 - 104.0))],
    ),
    Scenario(
        "take-profit pays the maker fee, the entry the taker fee",
        [B0, (100, 101, 99, 100), (101, 111, 100, 105), (105, 106, 104, 105)],
        [1, 1, 1, 1],
        {"fees": {"maker_bps": 2, "taker_bps": 10}, "stops": {"take_profit": 0.10}},
        trades=[
            (
                1,
                1,
                100,
                2,
                110,
                "take_profit",
                q_fee(100, 0.001) * 10 - q_fee(100, 0.001) * 100 * 0.001 - q_fee(100, 0.001) * 110 * 0.0002,
            )
        ],
    ),
    Scenario(
        "close_at_end closes at the last close",
        [B0, (100, 101, 99, 100), (110, 121, 109, 120)],
        [1, 1, 1],
        {"close_at_end": True},
        trades=[(1, 1, 100, 2, 120, "end_of_data", 200.0)],
    ),
    Scenario(
        "an open position at the end is reported with its unrealised P&L",
        [B0, (100, 101, 99, 100), (110, 121, 109, 120)],
        [1, 1, 1],
        check=_open_position(10.0, 100.0, 120.0),
    ),
    Scenario(
        "Kelly sizing uses the fallback fraction before enough trades",
        [B0, (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)],
        [1, 1, 0, 0],
        {"sizing": {"kind": "kelly", "min_trades": 5, "fallback_fraction": 0.1}},
        trades=[(1, 1, 100, 3, 110, "signal", 10.0)],
    ),
    Scenario(
        "volatility target: flat while the window fills, then sized from realised volatility",
        [B0, (102, 103, 101, 102), (99, 100, 98, 99), (103, 104, 102, 103), (104, 105, 103, 104)],
        [1, 1, 1, 1, 1],
        {"sizing": {"kind": "volatility_target", "target_vol": 0.2, "lookback": 3}},
        check=_vol_target,
    ),
    Scenario(
        "max drawdown kill switch closes everything and stops trading",
        [B0, FLAT100, (100, 101, 74, 75), (76, 77, 75, 76), (77, 78, 76, 77), (78, 79, 77, 78), (80, 81, 79, 80)],
        [1, 1, 1, 0, 1, 1, 1],
        {"risk": {"max_drawdown": 0.2}},
        trades=[(1, 1, 100, 3, 76, "risk_halt", -240.0)],
        check=_fills(2),
    ),
    Scenario(
        "max daily loss halts until the next UTC day, then re-applies the target",
        [B0, (100, 101, 84, 85), (86, 87, 85, 86), (86, 87, 85, 86), (87, 88, 86, 87), (88, 89, 87, 88)],
        [1, 1, 1, 1, 1, 1],
        {"risk": {"max_daily_loss": 0.1}},
        trades=[(1, 1, 100, 2, 86, "risk_halt", -140.0)],
        check=_halt_daily,
        step_ms=6 * 3_600_000,
    ),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(sc: Scenario) -> None:
    config = BacktestConfig.model_validate({"initial_cash": 1000.0, "fees": {"taker_bps": 0.0}, **sc.config})
    candles = make_candles(sc.bars, step=sc.step_ms)
    result = run_both(candles, FixedTargets(sc.targets), config)
    trades = result.trades
    assert len(trades) == len(sc.trades), [t.to_dict() for t in trades]
    for t, (side, eb, ep, xb, xp, reason, pnl) in zip(trades, sc.trades, strict=True):
        assert (t.side, t.entry_bar, t.exit_bar, t.exit_reason) == (side, eb, xb, reason)
        assert t.entry_price == pytest.approx(ep, rel=1e-12)
        assert t.exit_price == pytest.approx(xp, rel=1e-12)
        assert t.pnl == pytest.approx(pnl, rel=1e-9, abs=1e-9)
    if sc.check is not None:
        sc.check(result)
    # Accounting identity: realised + unrealised P&L = equity change.
    unrealised = sum(p["unrealized_pnl"] for p in result.open_positions)
    assert sum(t.pnl for t in trades) + unrealised == pytest.approx(result.final_equity - 1000.0, abs=1e-9)
    assert sum(t.fees for t in trades) <= result.fees_paid + 1e-12


def test_scenario_table_is_large() -> None:
    assert len(SCENARIOS) >= 40
