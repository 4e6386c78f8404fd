"""Portfolio accounting: cash, positions, fills and closed trades.

One code path applies every fill, whichever engine produced it, so the event-driven and the vectorised engine
(and a paper bot) account identically.

- Cash is in quote currency. A buy of ``q`` at ``P`` debits ``q * P`` and then the fee; a sell credits ``q * P``
  and debits the fee. Shorts are negative quantities; opening one credits the sale proceeds to cash.
- A position keeps its **average entry price** (weighted by quantity when it is increased; unchanged when it is
  reduced) and the fees paid to open it. Reducing or closing records a **trade** for the quantity closed:
  ``pnl = qty * (exit - entry) * side - fees``, where ``fees`` is the closed share of the entry fees plus the
  exit fee, and ``return = pnl / (qty * entry)``. The sum of trade P&L plus the open positions' unrealised
  P&L (entry fees included) equals equity minus initial cash.
- Floats are fine here (analytics); the bots' durable ledger keeps its own exact decimal record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aaiti.trading.fills import EXIT_REASONS, FillModel, StopLevels
from aaiti.trading.risk import liquidation_level
from aaiti.trading.sizing import KellyStats

ENTRY = -1  # reason code of fills that open or increase a position


@dataclass(frozen=True, slots=True)
class Trade:
    """One closed (part of a) position. Times are bar open times, epoch ms UTC; ``exit_bar`` is the index of
    the bar on which the exit filled."""

    symbol: str
    side: int
    qty: float
    entry_bar: int
    entry_ts: int
    entry_price: float
    exit_bar: int
    exit_ts: int
    exit_price: float
    fees: float
    pnl: float
    ret: float
    exit_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": "long" if self.side > 0 else "short",
            "qty": self.qty,
            "entry_bar": self.entry_bar,
            "entry_ts": self.entry_ts,
            "entry_price": self.entry_price,
            "exit_bar": self.exit_bar,
            "exit_ts": self.exit_ts,
            "exit_price": self.exit_price,
            "fees": self.fees,
            "pnl": self.pnl,
            "return": self.ret,
            "exit_reason": self.exit_reason,
        }


class _RowLog:
    """An append-only table.

    The event loop appends one tuple per fill to ``rows`` (cheap in a hot loop); the vectorised engine can add a
    block of numpy columns in one go with :meth:`extend_columns`, which is kept as arrays until someone reads
    the log. Logically the log is the column blocks (in the order added) followed by ``rows``.
    """

    FIELDS: tuple[str, ...] = ()

    __slots__ = ("blocks", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.blocks: list[dict[str, np.ndarray]] = []

    def extend_columns(self, cols: dict[str, np.ndarray]) -> None:
        """Append rows given as equal-length arrays (before any row appended with ``rows.append``)."""
        if self.rows:
            raise ValueError("column blocks must come before appended rows")
        self.blocks.append({name: np.asarray(cols[name]) for name in self.FIELDS})

    def __len__(self) -> int:
        return sum(len(b[self.FIELDS[0]]) for b in self.blocks) + len(self.rows)

    def column(self, name: str) -> list[Any]:
        i = self.FIELDS.index(name)
        out: list[Any] = []
        for b in self.blocks:
            out.extend(b[name].tolist())
        out.extend(r[i] for r in self.rows)
        return out

    def columns(self) -> dict[str, list[Any]]:
        return {name: self.column(name) for name in self.FIELDS}

    def array(self, name: str, dtype: Any = np.float64) -> np.ndarray:
        """One column as a numpy array (fast for column blocks)."""
        if not self.rows and len(self.blocks) == 1:
            return np.asarray(self.blocks[0][name], dtype=dtype)
        return np.asarray(self.column(name), dtype=dtype)

    def all_rows(self) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for b in self.blocks:
            out.extend(zip(*(b[name].tolist() for name in self.FIELDS), strict=True))
        out.extend(self.rows)
        return out

    def load(self, cols: dict[str, list[Any]]) -> None:
        self.blocks = []
        self.rows = [tuple(r) for r in zip(*(cols[name] for name in self.FIELDS), strict=True)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _RowLog) and self.FIELDS == other.FIELDS and self.all_rows() == other.all_rows()

    __hash__ = None  # type: ignore[assignment]


class TradeLog(_RowLog):
    """Closed trades. ``side`` is the position side (1 long, -1 short); ``reason`` an exit reason code."""

    FIELDS = (
        "sym",
        "side",
        "qty",
        "entry_bar",
        "entry_ts",
        "entry_price",
        "exit_bar",
        "exit_ts",
        "exit_price",
        "fees",
        "pnl",
        "ret",
        "reason",
    )
    __slots__ = ()

    def records(self, symbols: list[str]) -> list[Trade]:
        return [
            Trade(
                symbols[r[0]], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], EXIT_REASONS[r[12]]
            )
            for r in self.all_rows()
        ]


class FillLog(_RowLog):
    """Every fill. ``side`` is +1 for a buy and -1 for a sell; ``reason`` is ``ENTRY`` (-1) for fills that open
    or increase a position, else the exit reason code; ``maker`` marks resting limit (take-profit) fills."""

    FIELDS = ("sym", "bar", "ts", "side", "qty", "price", "fee", "reason", "maker")
    __slots__ = ()


class Portfolio:
    """Cash and positions of one account over ``n`` symbols (indexed 0..n-1)."""

    __slots__ = (
        "avg",
        "cash",
        "entry_bar",
        "entry_fees",
        "entry_ts",
        "fees_paid",
        "fill_model",
        "fills",
        "kelly",
        "levels",
        "margin",
        "pool",
        "qty",
        "track_kelly",
        "track_levels",
        "trades",
    )

    def __init__(
        self,
        n: int,
        initial_cash: float,
        fill_model: FillModel,
        margin: bool,
        track_kelly: bool = True,
        track_levels: bool = True,
    ) -> None:
        self.cash = float(initial_cash)
        self.track_kelly = track_kelly
        # Without stops and without margin no protective level can exist; skipping them saves work per fill.
        self.track_levels = track_levels or margin
        self.fill_model = fill_model
        self.margin = margin
        self.qty: list[float] = [0.0] * n
        self.avg: list[float] = [0.0] * n
        self.entry_bar: list[int] = [-1] * n
        self.entry_ts: list[int] = [0] * n
        self.entry_fees: list[float] = [0.0] * n
        # ``levels[s]`` is None while flat; the objects in ``pool`` are reused from one position to the next.
        self.levels: list[StopLevels | None] = [None] * n
        self.pool = [StopLevels(1, fill_model.stops.trailing_stop) for _ in range(n)]
        self.fees_paid = 0.0
        self.trades = TradeLog()
        self.fills = FillLog()
        self.kelly = KellyStats()

    def reduce(
        self, s: int, qty: float, price: float, fee_rate: float, bar: int, ts: int, reason: int, maker: bool
    ) -> None:
        """Close ``qty`` (> 0, at most the open quantity) of symbol ``s``'s position at ``price``."""
        qtys = self.qty
        q = qtys[s]
        open_qty = q if q > 0 else -q
        full = qty >= open_qty
        if full:
            qty = open_qty
        notional = qty * price
        fee = notional * fee_rate
        avg = self.avg[s]
        entry_fees = self.entry_fees[s]
        entry_fee_share = entry_fees if full else entry_fees * (qty / open_qty)
        fees = entry_fee_share + fee
        if q > 0:
            self.cash = (self.cash + notional) - fee
            pnl = qty * (price - avg) - fees
            side = 1
        else:
            self.cash = (self.cash - notional) - fee
            pnl = qty * (avg - price) - fees
            side = -1
        self.fees_paid += fee
        ret = pnl / (qty * avg)
        self.trades.rows.append(
            (s, side, qty, self.entry_bar[s], self.entry_ts[s], avg, bar, ts, price, fees, pnl, ret, reason)
        )
        if self.track_kelly:
            self.kelly.add(ret)
        self.fills.rows.append((s, bar, ts, -side, qty, price, fee, reason, maker))
        if full:
            qtys[s] = 0.0
            self.avg[s] = 0.0
            self.entry_fees[s] = 0.0
            self.entry_bar[s] = -1
            self.levels[s] = None
        else:
            qtys[s] = q - qty if side > 0 else q + qty
            self.entry_fees[s] = entry_fees - entry_fee_share

    def increase(
        self, s: int, side: int, qty: float, price: float, fee_rate: float, bar: int, ts: int, equity: float
    ) -> None:
        """Open or add ``qty`` (> 0) in direction ``side`` at ``price``. ``equity`` (marked at this bar's open)
        sets the liquidation level of margin positions."""
        qtys = self.qty
        q = qtys[s]
        notional = qty * price
        fee = notional * fee_rate
        if side > 0:
            self.cash = (self.cash - notional) - fee
        else:
            self.cash = (self.cash + notional) - fee
        self.fees_paid += fee
        if q == 0.0:
            qtys[s] = qty if side > 0 else -qty
            self.avg[s] = price
            self.entry_fees[s] = fee
            self.entry_bar[s] = bar
            self.entry_ts[s] = ts
            if self.track_levels:
                lv = self.pool[s]
                lv.reset(side)
                self.fill_model.levels_for_entry(side, price, lv)
                lv.extreme = price
                self.levels[s] = lv
        else:
            open_qty = q if q > 0 else -q
            new_qty = open_qty + qty
            avg = (open_qty * self.avg[s] + notional) / new_qty
            self.avg[s] = avg
            qtys[s] = new_qty if side > 0 else -new_qty
            self.entry_fees[s] += fee
            if self.track_levels:
                lv = self.fill_model.levels_for_entry(side, avg, self.levels[s])
                if side > 0:
                    if price > lv.extreme:
                        lv.extreme = price
                elif price < lv.extreme:
                    lv.extreme = price
                self.levels[s] = lv
        if self.margin:
            self.set_liquidation(s, equity)
        self.fills.rows.append((s, bar, ts, side, qty, price, fee, ENTRY, False))

    def set_liquidation(self, s: int, equity: float) -> None:
        lv = self.levels[s]
        q = self.qty[s]
        if lv is not None and q != 0.0:
            lv.liq = liquidation_level(1 if q > 0 else -1, self.avg[s], q, equity)

    def equity(self, prices: list[float]) -> float:
        e = self.cash
        for q, p in zip(self.qty, prices, strict=True):
            e = e + q * p
        return e

    # --- persistence ------------------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "qty": list(self.qty),
            "avg": list(self.avg),
            "entry_bar": list(self.entry_bar),
            "entry_ts": list(self.entry_ts),
            "entry_fees": list(self.entry_fees),
            "levels": [
                None
                if lv is None
                else {
                    "side": lv.side,
                    "sl": _finite_or_none(lv.sl),
                    "tp": _finite_or_none(lv.tp),
                    "liq": _finite_or_none(lv.liq),
                    "extreme": _finite_or_none(lv.extreme),
                }
                for lv in self.levels
            ],
            "fees_paid": self.fees_paid,
            "kelly": self.kelly.to_dict(),
            "trades": self.trades.columns(),
            "fills": self.fills.columns(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.cash = float(state["cash"])
        self.qty = [float(v) for v in state["qty"]]
        self.avg = [float(v) for v in state["avg"]]
        self.entry_bar = [int(v) for v in state["entry_bar"]]
        self.entry_ts = [int(v) for v in state["entry_ts"]]
        self.entry_fees = [float(v) for v in state["entry_fees"]]
        levels: list[StopLevels | None] = []
        for d in state["levels"]:
            if d is None:
                levels.append(None)
                continue
            lv = StopLevels(int(d["side"]), self.fill_model.stops.trailing_stop)
            # Absent levels were stored as null; a fresh StopLevels already holds the "never" defaults.
            if d["sl"] is not None:
                lv.sl = float(d["sl"])
            if d["tp"] is not None:
                lv.tp = float(d["tp"])
            if d["liq"] is not None:
                lv.liq = float(d["liq"])
            if d["extreme"] is not None:
                lv.extreme = float(d["extreme"])
            levels.append(lv)
        self.levels = levels
        self.fees_paid = float(state["fees_paid"])
        self.kelly = KellyStats.from_dict(state["kelly"])
        self.trades.load(state["trades"])
        self.fills.load(state["fills"])


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
