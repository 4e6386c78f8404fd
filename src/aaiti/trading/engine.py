"""Backtest engines: an event-driven bar loop (the code path paper bots use) and a vectorised fast path.

Both follow the same bar protocol, for every bar ``j`` (all symbols share the bar's timestamp):

A. **Open.** Orders decided on bar ``j-1``'s close fill at bar ``j``'s open (:mod:`aaiti.trading.fills`).
   Sizing uses the equity marked at this open (:mod:`aaiti.trading.sizing`). Orders that reduce, close or
   reverse positions execute first (in symbol order), then orders that open or increase them, so freed cash is
   available to the buys.
B. **Intrabar.** Each open position is checked against its stop-loss / trailing stop / liquidation level and
   take-profit using the bar's open, high and low (gap and same-bar rules in :mod:`aaiti.trading.fills`).
C. **Close.** Equity is marked to market: ``cash + sum(qty * close)``; exposure is
   ``sum(|qty| * close) / equity``. Risk halts are evaluated (:mod:`aaiti.trading.risk`).
D. **Decide.** Each strategy sees the closed bar and returns its target exposure. An order is placed only when
   the target **changes**; a position closed by a stop is not re-entered until the target changes again.

The vectorised path (:func:`run_vectorized`) computes the same thing from whole target arrays. Orders are the
bars after a target change; the protective exit of every position is found with numpy over its bars; only the
orders and exits (not the bars) are visited in Python, and equity is marked to market with numpy between them.
The fills go through the same :func:`execute_one` / :class:`~aaiti.trading.portfolio.Portfolio` code as the
event loop, except in two specialisations for the common single-symbol spot account
(:func:`_spot_fast_loop`, :func:`_round_trip_loop`) that write the same arithmetic out inline. Whatever the
path, the engines produce bit-for-bit identical fills, trades, equity and exposure; ``tests/trading/
test_engine.py`` checks this for every built-in strategy and many account configurations, and the
specialisations against the general loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aaiti.trading import indicators as ind
from aaiti.trading import streaming as st
from aaiti.trading.candles import Candles, FloatArray, IntArray
from aaiti.trading.fills import (
    END_OF_DATA,
    EXIT_REASONS,
    LIQUIDATION,
    RISK_HALT,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    TRAILING_STOP,
    FeeModel,
    FillModel,
    SlippageModel,
    StopLevels,
    StopRules,
)
from aaiti.trading.portfolio import ENTRY, FillLog, Portfolio, Trade, TradeLog
from aaiti.trading.risk import DAY_MS, HaltState, RiskLimits
from aaiti.trading.sizing import (
    FixedFraction,
    FixedNotional,
    KellyCapped,
    Sizing,
    VolatilityTarget,
    equity_fraction,
)
from aaiti.trading.strategies.base import Strategy, StrategyStream

_INF = math.inf
_NAN = math.nan
# A buy that would spend all the cash is shrunk by this relative margin so that floating-point rounding of
# price * qty * (1 + fee) can never leave the cash a few ulps below zero.
_CASH_SAFETY = 1.0 - 1e-12


class BacktestConfig(BaseModel):
    """Everything about execution and accounting that is not the strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_cash: float = Field(default=10_000.0, gt=0.0, le=1e12)
    fees: FeeModel = FeeModel()
    slippage: SlippageModel = SlippageModel()
    stops: StopRules = StopRules()
    sizing: Sizing = FixedFraction()
    risk: RiskLimits = RiskLimits()
    allow_short: bool = Field(default=False, description="Margin account that may hold short positions")
    max_leverage: float = Field(default=1.0, ge=1.0, le=10.0, description="> 1 makes it a margin account")
    weights: dict[str, float] | None = Field(
        default=None, description="Share of equity per symbol for equity-relative sizing (default 1/N)"
    )
    close_at_end: bool = Field(default=False, description="Close open positions at the last bar's close")

    @model_validator(mode="after")
    def _weights_positive(self) -> BacktestConfig:
        if self.weights is not None and any(not (0.0 < w <= 10.0) for w in self.weights.values()):
            raise ValueError("weights must be in (0, 10]")
        return self

    @property
    def margin(self) -> bool:
        return self.allow_short or self.max_leverage > 1.0


class Bar(NamedTuple):
    """One closed candle: ``ts`` is its open time (epoch ms, UTC)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass
class BacktestResult:
    """Output of either engine.

    ``equity``/``exposure`` have one value per bar (marked at the close); ``positions`` is
    ``(n_symbols, n_bars)`` quantities held at each close; ``benchmark`` is the frictionless buy-and-hold equity
    of the same symbols (equal weights, bought at the first bar's open).
    """

    symbols: list[str]
    ts: IntArray
    equity: FloatArray
    exposure: FloatArray
    positions: FloatArray
    benchmark: FloatArray
    trade_log: TradeLog
    fill_log: FillLog
    initial_cash: float
    fees_paid: float
    engine: str
    open_positions: list[dict[str, Any]] = field(default_factory=list)
    bar_ms: int = 0

    @property
    def trades(self) -> list[Trade]:
        return self.trade_log.records(self.symbols)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_cash

    def trade_dicts(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trades]


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------------------------


def bar_ms_of(ts: IntArray) -> int:
    """The bar length: the most common spacing of the timestamps (gaps in the data do not change it)."""
    if len(ts) < 2:
        return DAY_MS
    d = np.diff(ts)
    vals, counts = np.unique(d[d > 0], return_counts=True)
    return int(vals[np.argmax(counts)]) if len(vals) else DAY_MS


def clean_target(x: float, allow_short: bool) -> float:
    """Clip a strategy's target to [-1, 1] (or [0, 1] without shorting); NaN means flat."""
    if x != x:
        return 0.0
    lo = -1.0 if allow_short else 0.0
    return lo if x < lo else 1.0 if x > 1.0 else x


def clean_targets(t: FloatArray, allow_short: bool) -> FloatArray:
    """:func:`clean_target` over an array (returns a new array)."""
    out = np.array(t, dtype=np.float64)
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(out, -1.0 if allow_short else 0.0, 1.0, out=out)


class _Runtime:
    """Configuration resolved into plain floats for the hot loops."""

    def __init__(self, config: BacktestConfig, symbols: Sequence[str], bar_ms: int) -> None:
        self.config = config
        self.n = len(symbols)
        self.fill_model = FillModel(config.fees, config.slippage, config.stops)
        self.taker = config.fees.taker
        self.maker = config.fees.maker
        self.margin = config.margin
        self.allow_short = config.allow_short
        self.max_leverage = config.max_leverage
        self.sizing = config.sizing
        self.fixed_fraction = config.sizing.fraction if isinstance(config.sizing, FixedFraction) else None
        self.track_kelly = isinstance(config.sizing, KellyCapped)
        w = config.weights
        if w is not None:
            missing = [s for s in symbols if s not in w]
            if missing:
                raise ValueError(f"weights missing for {missing}")
            self.weights = [float(w[s]) for s in symbols]
        else:
            self.weights = [1.0 / self.n] * self.n
        self.bar_ms = bar_ms
        self.sqrt_ppy = math.sqrt(365.0 * DAY_MS / bar_ms)
        self.vol_lookback = config.sizing.lookback if isinstance(config.sizing, VolatilityTarget) else 0
        self.slip_base = config.slippage.base
        self.atr_fraction = config.slippage.atr_fraction
        self.atr_period = config.slippage.atr_period
        # Targets before this bar are treated as flat: the volatility-target sizing cannot size an order
        # until its realised-volatility window is full (it never guesses a volatility).
        self.target_warmup = self.vol_lookback
        self.stops_on = config.stops.active
        # Positions need a bar-by-bar check only if some protective level can exist.
        self.check_exits = self.stops_on or self.margin


def _desired_qty(
    rt: _Runtime, pf: Portfolio, s: int, target: float, open_: float, slip: float, vol: float, equity: float
) -> float:
    if target == 0.0 or not equity > 0.0:
        return 0.0
    side = 1 if target > 0 else -1
    price = open_ * (1.0 + slip) if side > 0 else open_ * (1.0 - slip)
    mag = target if target > 0 else -target
    sizing = rt.sizing
    if rt.fixed_fraction is not None:
        notional = mag * rt.fixed_fraction * rt.weights[s] * equity
    elif isinstance(sizing, FixedNotional):
        notional = mag * sizing.notional
    else:
        notional = mag * equity_fraction(sizing, vol, rt.sqrt_ppy, pf.kelly) * rt.weights[s] * equity
    cap = rt.max_leverage * equity
    if notional > cap:
        notional = cap
    if not notional > 0.0:
        return 0.0
    qty = notional / price
    return qty if side > 0 else -qty


def execute_orders(
    rt: _Runtime,
    pf: Portfolio,
    bar: int,
    ts: int,
    opens: Sequence[float],
    slips: Sequence[float],
    vols: Sequence[float],
    orders: Sequence[tuple[int, float, int]],
) -> None:
    """Phase A of a bar: fill ``orders`` = ``[(symbol, target, reason_code), ...]`` at the open.

    Shared verbatim by both engines (and by the paper broker): sizing equity first, then every reduction, then
    every increase.
    """
    equity = pf.cash
    qty = pf.qty
    for i in range(len(qty)):
        equity = equity + qty[i] * opens[i]
    if len(orders) == 1:
        s, tgt, reason = orders[0]
        execute_one(rt, pf, s, tgt, reason, bar, ts, opens[s], slips[s], vols[s], equity)
        return
    desired = [_desired_qty(rt, pf, s, tgt, opens[s], slips[s], vols[s], equity) for s, tgt, _ in orders]
    for (s, _, reason), d in zip(orders, desired, strict=True):
        _reduce_towards(rt, pf, s, d, bar, ts, opens[s], slips[s], reason, equity)
    for (s, _, _), d in zip(orders, desired, strict=True):
        _increase_towards(rt, pf, s, d, bar, ts, opens[s], slips[s], equity)


def execute_one(
    rt: _Runtime,
    pf: Portfolio,
    s: int,
    target: float,
    reason: int,
    bar: int,
    ts: int,
    open_: float,
    slip: float,
    vol: float,
    equity: float,
) -> None:
    """A bar with a single order, given the sizing ``equity``: exactly the steps of :func:`execute_orders`
    (:func:`_desired_qty`, :func:`_reduce_towards`, :func:`_increase_towards`) written out in one function,
    because this is the hot path of both engines. ``test_engine.py`` checks the two agree."""
    # _desired_qty
    d = 0.0
    if target != 0.0 and equity > 0.0:
        if target > 0:
            price = open_ * (1.0 + slip)
            mag = target
        else:
            price = open_ * (1.0 - slip)
            mag = -target
        ff = rt.fixed_fraction
        if ff is not None:
            notional = mag * ff * rt.weights[s] * equity
        elif isinstance(rt.sizing, FixedNotional):
            notional = mag * rt.sizing.notional
        else:
            notional = mag * equity_fraction(rt.sizing, vol, rt.sqrt_ppy, pf.kelly) * rt.weights[s] * equity
        cap = rt.max_leverage * equity
        if notional > cap:
            notional = cap
        if notional > 0.0:
            d = notional / price if target > 0 else -(notional / price)
    # _reduce_towards
    q = pf.qty[s]
    taker = rt.taker
    if q > 0.0 and d < q:
        pf.reduce(s, q - (d if d > 0.0 else 0.0), open_ * (1.0 - slip), taker, bar, ts, reason, False)
        q = pf.qty[s]
        if rt.margin and q != 0.0:
            pf.set_liquidation(s, equity)
    elif q < 0.0 and d > q:
        pf.reduce(s, -q - (-d if d < 0.0 else 0.0), open_ * (1.0 + slip), taker, bar, ts, reason, False)
        q = pf.qty[s]
        if rt.margin and q != 0.0:
            pf.set_liquidation(s, equity)
    # _increase_towards
    if d > 0.0 and d > q:
        price = open_ * (1.0 + slip)
        dq = d - (q if q > 0.0 else 0.0)
        if not rt.margin:
            cash = pf.cash
            if not cash > 0.0:
                return
            affordable = cash / (price * (1.0 + taker)) * _CASH_SAFETY
            if dq > affordable:
                dq = affordable
        pf.increase(s, 1, dq, price, taker, bar, ts, equity)
    elif d < 0.0 and d < q:
        price = open_ * (1.0 - slip)
        dq = (q if q < 0.0 else 0.0) - d
        pf.increase(s, -1, dq, price, taker, bar, ts, equity)


def _reduce_towards(
    rt: _Runtime,
    pf: Portfolio,
    s: int,
    d: float,
    bar: int,
    ts: int,
    open_: float,
    slip: float,
    reason: int,
    equity: float,
) -> None:
    q = pf.qty[s]
    if q > 0.0 and d < q:
        pf.reduce(s, q - (d if d > 0.0 else 0.0), open_ * (1.0 - slip), rt.taker, bar, ts, reason, False)
    elif q < 0.0 and d > q:
        pf.reduce(s, -q - (-d if d < 0.0 else 0.0), open_ * (1.0 + slip), rt.taker, bar, ts, reason, False)
    else:
        return
    if rt.margin and pf.qty[s] != 0.0:
        pf.set_liquidation(s, equity)


def _increase_towards(
    rt: _Runtime, pf: Portfolio, s: int, d: float, bar: int, ts: int, open_: float, slip: float, equity: float
) -> None:
    q = pf.qty[s]
    if d > 0.0 and d > q:
        price = open_ * (1.0 + slip)
        dq = d - (q if q > 0.0 else 0.0)
        if not rt.margin:
            cash = pf.cash
            if not cash > 0.0:
                return
            affordable = cash / (price * (1.0 + rt.taker)) * _CASH_SAFETY
            if dq > affordable:
                dq = affordable
        pf.increase(s, 1, dq, price, rt.taker, bar, ts, equity)
    elif d < 0.0 and d < q:
        price = open_ * (1.0 - slip)
        dq = (q if q < 0.0 else 0.0) - d
        pf.increase(s, -1, dq, price, rt.taker, bar, ts, equity)


def _bench_weights(initial: float, first_opens: Sequence[float]) -> list[float]:
    """Units of each symbol the frictionless equal-weight benchmark holds (bought at the first open)."""
    n = len(first_opens)
    return [initial / n / o for o in first_opens]


def _benchmark(initial: float, candles: Sequence[Candles]) -> FloatArray:
    if len(candles[0]) == 0:
        return np.zeros(0)
    units = _bench_weights(initial, [float(c.open[0]) for c in candles])
    acc = candles[0].close * units[0]
    for c, u in zip(candles[1:], units[1:], strict=True):
        acc += c.close * u
    return acc


def _open_positions(pf: Portfolio, symbols: Sequence[str], closes: Sequence[float]) -> list[dict[str, Any]]:
    out = []
    for s, sym in enumerate(symbols):
        q = pf.qty[s]
        if q == 0.0:
            continue
        avg = pf.avg[s]
        c = closes[s]
        out.append(
            {
                "symbol": sym,
                "side": "long" if q > 0 else "short",
                "qty": abs(q),
                "entry_bar": pf.entry_bar[s],
                "entry_ts": pf.entry_ts[s],
                "entry_price": avg,
                "mark_price": c,
                "unrealized_pnl": q * (c - avg) - pf.entry_fees[s],
                "entry_fees": pf.entry_fees[s],
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Event-driven engine
# ---------------------------------------------------------------------------------------------------------------


class EventEngine:
    """Bar-by-bar engine. ``step`` consumes one closed bar per symbol (all with the same timestamp).

    The same object drives paper bots: feed it each closed candle, persist ``get_state()`` after each step and
    restore it with ``set_state()`` after a restart. ``bar_ms`` is the candle length (it annualises the
    realised volatility of the volatility-target sizing).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        strategies: Strategy | Sequence[Strategy],
        config: BacktestConfig,
        bar_ms: int,
        record: bool = True,
    ) -> None:
        self.symbols = list(symbols)
        n = len(self.symbols)
        if n == 0:
            raise ValueError("at least one symbol")
        strats = list(strategies) if isinstance(strategies, Sequence) else [strategies] * n
        if len(strats) != n:
            raise ValueError("one strategy per symbol")
        self.config = config
        self.rt = _Runtime(config, self.symbols, bar_ms)
        self.pf = Portfolio(
            n, config.initial_cash, self.rt.fill_model, self.rt.margin, self.rt.track_kelly, self.rt.check_exits
        )
        self.streams: list[StrategyStream] = [s.stream() for s in strats]
        self.last_target = [0.0] * n
        self.pending: dict[int, tuple[float, int]] = {}
        self.slip = [self.rt.slip_base] * n
        self.vol = [_NAN] * n
        self.atr = [st.ATR(self.rt.atr_period) for _ in range(n)] if self.rt.atr_fraction else []
        self.volstream = [st.ReturnsVolatility(self.rt.vol_lookback) for _ in range(n)] if self.rt.vol_lookback else []
        self.halt = HaltState(config.risk, config.initial_cash) if config.risk.active else None
        self.bar_index = 0
        self.record = record
        self.ts: list[int] = []
        self.equity: list[float] = []
        self.exposure: list[float] = []
        self.positions: list[list[float]] = [[] for _ in range(n)]
        self.last_close: list[float] = [_NAN] * n
        self.first_open: list[float] = [_NAN] * n
        self.bench: list[float] = []
        self.bench_units: list[float] = []

    # --- public API -------------------------------------------------------------------------------------------

    def step(
        self,
        bars: Bar | Sequence[Bar] | Mapping[str, Bar],
        forecasts: Sequence[float | None] | None = None,
    ) -> float:
        """Process one closed bar per symbol; returns the equity at its close."""
        if isinstance(bars, Bar):
            seq: list[Bar] = [bars]
        elif isinstance(bars, Mapping):
            seq = [bars[s] for s in self.symbols]
        else:
            seq = list(bars)
        if len(seq) != len(self.symbols):
            raise ValueError("one bar per symbol")
        ts = seq[0].ts
        if any(b.ts != ts for b in seq):
            raise ValueError("bars of one step must share a timestamp")
        if len(seq) == 1:
            b = seq[0]
            return self._on_bar1(
                int(ts),
                float(b.open),
                float(b.high),
                float(b.low),
                float(b.close),
                float(b.volume),
                forecasts[0] if forecasts is not None else None,
            )
        return self._on_bar(
            int(ts),
            [float(b.open) for b in seq],
            [float(b.high) for b in seq],
            [float(b.low) for b in seq],
            [float(b.close) for b in seq],
            [float(b.volume) for b in seq],
            list(forecasts) if forecasts is not None else None,
        )

    def run(self, candles: Sequence[Candles], forecasts: Sequence[FloatArray | None] | None = None) -> None:
        """Step through aligned candles (one per symbol)."""
        cols = [
            (c.ts.tolist(), c.open.tolist(), c.high.tolist(), c.low.tolist(), c.close.tolist(), c.volume.tolist())
            for c in candles
        ]
        fc = [f.tolist() if f is not None else None for f in forecasts] if forecasts is not None else None
        n = len(candles[0])
        ns = len(candles)
        if ns == 1:
            on_bar1 = self._on_bar1
            ts_l, o_l, h_l, l_l, c_l, v_l = cols[0]
            f0 = fc[0] if fc is not None else None
            if f0 is None:
                for i in range(n):
                    on_bar1(ts_l[i], o_l[i], h_l[i], l_l[i], c_l[i], v_l[i], None)
            else:
                for i in range(n):
                    on_bar1(ts_l[i], o_l[i], h_l[i], l_l[i], c_l[i], v_l[i], f0[i])
            return
        on_bar = self._on_bar
        for i in range(n):
            on_bar(
                cols[0][0][i],
                [c[1][i] for c in cols],
                [c[2][i] for c in cols],
                [c[3][i] for c in cols],
                [c[4][i] for c in cols],
                [c[5][i] for c in cols],
                [f[i] if f is not None else None for f in fc] if fc is not None else None,
            )

    def fills_since(self, index: int) -> list[dict[str, Any]]:
        """Fills recorded from position ``index`` of the fill log on (a bot passes the log length it last saw, to
        persist only the new fills of a step)."""
        rows = self.pf.fills.all_rows()[index:]
        names = self.pf.fills.FIELDS
        out = []
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["symbol"] = self.symbols[d.pop("sym")]
            d["reason"] = "entry" if d["reason"] < 0 else EXIT_REASONS[d["reason"]]
            out.append(d)
        return out

    def trades_since(self, index: int) -> list[dict[str, Any]]:
        """Closed trades from position ``index`` of the trade log on, as dicts (see :class:`Trade`)."""
        return [t.to_dict() for t in self.pf.trades.records(self.symbols)[index:]]

    @property
    def pending_orders(self) -> dict[str, float]:
        """Target exposures decided on the last close that will fill at the next bar's open."""
        return {self.symbols[s]: t for s, (t, _) in sorted(self.pending.items())}

    def close_all(self) -> None:
        """Close every position at the last bar's close (end of a backtest); the last equity point becomes the
        cash after those fills."""
        pf = self.pf
        if self.bar_index == 0:
            return
        bar = self.bar_index - 1
        ts = self.ts[-1] if self.ts else 0
        for s in range(len(self.symbols)):
            q = pf.qty[s]
            if q != 0.0:
                side = 1 if q > 0 else -1
                price = (
                    self.last_close[s] * (1.0 - self.slip[s]) if side > 0 else self.last_close[s] * (1.0 + self.slip[s])
                )
                pf.reduce(s, abs(q), price, self.rt.taker, bar, ts, END_OF_DATA, False)
        if self.equity:
            self.equity[-1] = pf.cash

    def result(self) -> BacktestResult:
        n = len(self.equity)
        return BacktestResult(
            symbols=self.symbols,
            ts=np.asarray(self.ts, dtype=np.int64),
            equity=np.asarray(self.equity, dtype=np.float64),
            exposure=np.asarray(self.exposure, dtype=np.float64),
            positions=np.asarray(self.positions, dtype=np.float64).reshape(len(self.symbols), n),
            benchmark=np.asarray(self.bench, dtype=np.float64),
            trade_log=self.pf.trades,
            fill_log=self.pf.fills,
            initial_cash=self.config.initial_cash,
            fees_paid=self.pf.fees_paid,
            engine="event",
            open_positions=_open_positions(self.pf, self.symbols, self.last_close),
            bar_ms=self.rt.bar_ms,
        )

    def get_state(self) -> dict[str, Any]:
        """JSON-compatible state (NaN/infinities are stored as null)."""
        return {
            "bar_index": self.bar_index,
            "portfolio": self.pf.get_state(),
            "streams": [s.get_state() for s in self.streams],
            "last_target": list(self.last_target),
            "pending": [[s, t, r] for s, (t, r) in sorted(self.pending.items())],
            "slip": list(self.slip),
            "vol": [None if math.isnan(v) else v for v in self.vol],
            "atr": [a.get_state() for a in self.atr],
            "volstream": [v.get_state() for v in self.volstream],
            "halt": self.halt.to_dict() if self.halt is not None else None,
            "last_close": [None if math.isnan(v) else v for v in self.last_close],
            "first_open": [None if math.isnan(v) else v for v in self.first_open],
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.bar_index = int(state["bar_index"])
        self.pf.set_state(dict(state["portfolio"]))
        for stream, s in zip(self.streams, state["streams"], strict=True):
            stream.set_state(s)
        self.last_target = [float(v) for v in state["last_target"]]
        self.pending = {int(s): (float(t), int(r)) for s, t, r in state["pending"]}
        self.slip = [float(v) for v in state["slip"]]
        self.vol = [_NAN if v is None else float(v) for v in state["vol"]]
        for a, s in zip(self.atr, state["atr"], strict=True):
            a.set_state(s)
        for v, s in zip(self.volstream, state["volstream"], strict=True):
            v.set_state(s)
        if self.halt is not None and state["halt"] is not None:
            self.halt.load(state["halt"])
        self.last_close = [_NAN if v is None else float(v) for v in state["last_close"]]
        self.first_open = [_NAN if v is None else float(v) for v in state["first_open"]]
        if not any(math.isnan(v) for v in self.first_open):
            self.bench_units = _bench_weights(self.config.initial_cash, self.first_open)

    # --- the bar protocol ---------------------------------------------------------------------------------------

    def _on_bar(
        self,
        ts: int,
        o: list[float],
        h: list[float],
        lo: list[float],
        c: list[float],
        v: list[float],
        fc: list[float | None] | None,
    ) -> float:
        j = self.bar_index
        pf = self.pf
        rt = self.rt
        n = rt.n
        if j == 0:
            self.first_open = list(o)
            self.bench_units = _bench_weights(self.config.initial_cash, o)
        # A. open
        if self.pending:
            orders = [(s, t, r) for s, (t, r) in sorted(self.pending.items())]
            self.pending = {}
            execute_orders(rt, pf, j, ts, o, self.slip, self.vol, orders)
        # B. intrabar protective exits
        if rt.check_exits:
            levels = pf.levels
            check = rt.fill_model.check_exit
            for s in range(n):
                lv = levels[s]
                if lv is not None:
                    hit = check(lv, o[s], h[s], lo[s], self.slip[s])
                    if hit is not None:
                        price, reason, maker = hit
                        q = pf.qty[s]
                        pf.reduce(s, q if q > 0 else -q, price, rt.maker if maker else rt.taker, j, ts, reason, maker)
        # C. close
        e = pf.cash
        g = 0.0
        qty = pf.qty
        for s in range(n):
            q = qty[s]
            e = e + q * c[s]
            g = g + (q if q > 0 else -q) * c[s]
        if self.record:
            self.ts.append(ts)
            self.equity.append(e)
            self.exposure.append(g / e if e > 0.0 else _NAN)
            units = self.bench_units
            bench = c[0] * units[0]
            for s in range(n):
                if s:
                    bench = bench + c[s] * units[s]
                self.positions[s].append(qty[s])
            self.bench.append(bench)
        self.last_close = c
        # D. decide
        halt = self.halt
        halted_now = False
        resumed = False
        if halt is not None:
            resumed = halt.start_bar(ts)
            halted_now = halt.on_close(e)
        streams = self.streams
        allow_short = rt.allow_short
        for s in range(n):
            t = streams[s].update(ts, o[s], h[s], lo[s], c[s], v[s], fc[s] if fc is not None else None)
            t = clean_target(t, allow_short) if j >= rt.target_warmup else 0.0
            if halt is not None and (halt.halted or halted_now):
                self.last_target[s] = t
                if halted_now:
                    self.pending[s] = (0.0, RISK_HALT)
                continue
            if t != self.last_target[s] or resumed:
                self.pending[s] = (t, SIGNAL)
                self.last_target[s] = t
        # Inputs of the next bar's fills.
        if self.atr:
            base = rt.slip_base
            frac = rt.atr_fraction
            for s in range(n):
                a = self.atr[s].update(h[s], lo[s], c[s])
                vol = a / c[s] if a == a else (h[s] - lo[s]) / c[s]
                self.slip[s] = base + frac * vol
        if self.volstream:
            for s in range(n):
                self.vol[s] = self.volstream[s].update(c[s])
        self.bar_index = j + 1
        return e

    def _on_bar1(self, ts: int, o: float, h: float, lo: float, c: float, v: float, fc: float | None) -> float:
        """:meth:`_on_bar` for a single symbol, with scalars: the same steps and arithmetic, fewer loops."""
        j = self.bar_index
        pf = self.pf
        rt = self.rt
        if j == 0:
            self.first_open = [o]
            self.bench_units = _bench_weights(self.config.initial_cash, [o])
        if self.pending:
            t0, r0 = self.pending[0]
            self.pending = {}
            execute_one(rt, pf, 0, t0, r0, j, ts, o, self.slip[0], self.vol[0], pf.cash + pf.qty[0] * o)
        if rt.check_exits:
            lv = pf.levels[0]
            if lv is not None:
                hit = rt.fill_model.check_exit(lv, o, h, lo, self.slip[0])
                if hit is not None:
                    price, reason, maker = hit
                    q = pf.qty[0]
                    pf.reduce(0, q if q > 0 else -q, price, rt.maker if maker else rt.taker, j, ts, reason, maker)
        q = pf.qty[0]
        e = pf.cash + q * c
        if self.record:
            self.ts.append(ts)
            self.equity.append(e)
            self.exposure.append((q if q > 0 else -q) * c / e if e > 0.0 else _NAN)
            self.positions[0].append(q)
            self.bench.append(c * self.bench_units[0])
        self.last_close = [c]
        halt = self.halt
        halted_now = False
        resumed = False
        if halt is not None:
            resumed = halt.start_bar(ts)
            halted_now = halt.on_close(e)
        t = self.streams[0].update(ts, o, h, lo, c, v, fc)
        t = clean_target(t, rt.allow_short) if j >= rt.target_warmup else 0.0
        if halt is not None and (halt.halted or halted_now):
            self.last_target[0] = t
            if halted_now:
                self.pending[0] = (0.0, RISK_HALT)
        elif t != self.last_target[0] or resumed:
            self.pending[0] = (t, SIGNAL)
            self.last_target[0] = t
        if self.atr:
            a = self.atr[0].update(h, lo, c)
            vol = a / c if a == a else (h - lo) / c
            self.slip[0] = rt.slip_base + rt.atr_fraction * vol
        if self.volstream:
            self.vol[0] = self.volstream[0].update(c)
        self.bar_index = j + 1
        return e


# ---------------------------------------------------------------------------------------------------------------
# Vectorised engine
# ---------------------------------------------------------------------------------------------------------------


class _SymbolPlan:
    """Per-symbol arrays for the vectorised path."""

    def __init__(self, candles: Candles, targets: FloatArray, rt: _Runtime) -> None:
        self.c = candles
        n = len(candles)
        self.n = n
        t = clean_targets(targets, rt.allow_short)
        if rt.target_warmup:
            t[: rt.target_warmup] = 0.0
        change = np.empty(n, dtype=bool)
        if n:
            change[0] = t[0] != 0.0
            np.not_equal(t[1:], t[:-1], out=change[1:])
        dec = np.flatnonzero(change[: n - 1]) if n else np.zeros(0, dtype=np.int64)
        self.order_bar: IntArray = dec + 1
        self.order_tgt: FloatArray = t[dec]
        # Slippage of fills at bar j (from bar j-1) and, at index n, of the end-of-data close; a constant
        # unless it is volatility-scaled.
        self.slip_const = rt.slip_base
        self.slip: FloatArray | None = None
        if rt.atr_fraction and n:
            a = ind.atr(candles.high, candles.low, candles.close, rt.atr_period)
            vol = np.where(np.isnan(a), (candles.high - candles.low) / candles.close, a / candles.close)
            slip = np.empty(n + 1)
            slip[0] = rt.slip_base
            slip[1:] = rt.slip_base + rt.atr_fraction * vol
            self.slip = slip
        self.vol_prev: FloatArray | None = None
        if rt.vol_lookback and n > 1:
            vol_prev = np.full(n, np.nan)
            vol_prev[1:] = ind.returns_volatility(candles.close, rt.vol_lookback)[:-1]
            self.vol_prev = vol_prev
        self.exit_bar = np.full(len(self.order_bar), -1, dtype=np.int64)
        self.exit_price = np.zeros(len(self.order_bar))
        self.exit_reason = np.zeros(len(self.order_bar), dtype=np.int64)
        self.exit_maker = np.zeros(len(self.order_bar), dtype=bool)

    def slip_at(self, idx: IntArray) -> FloatArray:
        if self.slip is None:
            return np.full(len(idx), self.slip_const)
        return self.slip[idx]

    def slip1(self, bar: int) -> float:
        return self.slip_const if self.slip is None else float(self.slip[bar])

    def vol_at(self, idx: IntArray) -> FloatArray:
        if self.vol_prev is None:
            return np.full(len(idx), np.nan)
        return self.vol_prev[idx]

    def vol1(self, bar: int) -> float:
        return _NAN if self.vol_prev is None else float(self.vol_prev[bar])


def _segmented_running_extreme(vals: FloatArray, seg_len: IntArray, use_max: bool) -> FloatArray:
    """Inclusive running max (or min) of ``vals`` restarting at each segment; ``vals`` holds the segments one
    after another with lengths ``seg_len``.

    Segments of similar length (same power of two) are laid out as the rows of a padded matrix and scanned with
    one ``maximum.accumulate`` along the rows: exact (max/min never round), and the padding is at most half.
    """
    out = np.empty_like(vals)
    acc = np.maximum.accumulate if use_max else np.minimum.accumulate
    pad = -np.inf if use_max else np.inf
    seg_start = np.cumsum(seg_len) - seg_len
    bucket = np.ceil(np.log2(np.maximum(seg_len, 1))).astype(np.int64)
    for b in np.unique(bucket).tolist():
        rows = np.flatnonzero(bucket == b)
        lens = seg_len[rows]
        width = int(lens.max())
        count = int(lens.sum())
        row_of = np.repeat(np.arange(len(rows)), lens)
        col = np.arange(count) - np.repeat(np.cumsum(lens) - lens, lens)
        src = np.repeat(seg_start[rows], lens) + col
        mat = np.full((len(rows), width), pad)
        mat[row_of, col] = vals[src]
        acc(mat, axis=1, out=mat)
        out[src] = mat[row_of, col]
    return out


def _precompute_exits(plan: _SymbolPlan, rt: _Runtime) -> None:
    """Protective exits of every position opened fresh by an order, assuming it is held until the next order.

    Fills the plan's ``exit_*`` arrays (``exit_bar = -1``: no protective exit before the next order).
    """
    stops = rt.config.stops
    nord = len(plan.order_bar)
    if not stops.active or nord == 0:
        return
    n = plan.n
    c = plan.c
    o, h, lo = c.open, c.high, c.low
    starts = plan.order_bar
    ends = np.empty(nord, dtype=np.int64)
    ends[:-1] = starts[1:]
    ends[-1] = n
    lengths = ends - starts
    # Lowest and highest print of each segment (open included, in case a candle's open lies outside its
    # high-low range): a segment whose range cannot reach any level needs no bar-by-bar look.
    seg_low = np.minimum.reduceat(np.minimum(lo, o), starts)
    seg_high = np.maximum.reduceat(np.maximum(h, o), starts)
    slip_a = plan.slip_at(starts)
    tr = stops.trailing_stop
    for side in (1, -1):
        sel = np.flatnonzero(plan.order_tgt > 0 if side > 0 else plan.order_tgt < 0)
        if len(sel) == 0:
            continue
        entry_sel = o[starts[sel]] * (1.0 + slip_a[sel]) if side > 0 else o[starts[sel]] * (1.0 - slip_a[sel])
        if side > 0:
            reach = np.full(len(sel), -np.inf) if stops.stop_loss is None else entry_sel * (1.0 - stops.stop_loss)
            if tr is not None:
                reach = np.maximum(reach, np.maximum(entry_sel, seg_high[sel]) * (1.0 - tr))
            cand = seg_low[sel] <= reach
            if stops.take_profit is not None:
                cand |= seg_high[sel] >= entry_sel * (1.0 + stops.take_profit)
        else:
            reach = np.full(len(sel), np.inf) if stops.stop_loss is None else entry_sel * (1.0 + stops.stop_loss)
            if tr is not None:
                reach = np.minimum(reach, np.minimum(entry_sel, seg_low[sel]) * (1.0 + tr))
            cand = seg_high[sel] >= reach
            if stops.take_profit is not None:
                cand |= seg_low[sel] <= entry_sel * (1.0 - stops.take_profit)
        segs = sel[cand]
        if len(segs) == 0:
            continue
        seg_len = lengths[segs]
        # Bars of the candidate segments, in order, with their segment id.
        sid = np.repeat(segs, seg_len)
        offsets = np.arange(len(sid)) - np.repeat(np.cumsum(seg_len) - seg_len, seg_len)
        idx = starts[sid] + offsets
        entry = np.zeros(nord)
        entry[sel] = entry_sel
        a_bar = entry[sid]
        ob, hb, lb, sb = o[idx], h[idx], lo[idx], plan.slip_at(idx)
        if side > 0:
            sl = a_bar * (1.0 - stops.stop_loss) if stops.stop_loss is not None else np.full(len(idx), -np.inf)
            tp = a_bar * (1.0 + stops.take_profit) if stops.take_profit is not None else np.full(len(idx), np.inf)
        else:
            sl = a_bar * (1.0 + stops.stop_loss) if stops.stop_loss is not None else np.full(len(idx), np.inf)
            tp = a_bar * (1.0 - stops.take_profit) if stops.take_profit is not None else np.full(len(idx), -np.inf)
        if stops.trailing_stop is not None:
            # Best price before each bar: the entry price on the first bar of a segment, then earlier extremes.
            ext_src = h if side > 0 else lo
            vals = np.empty(len(idx))
            seg_start = offsets == 0
            vals[seg_start] = a_bar[seg_start]
            rest = ~seg_start
            vals[rest] = ext_src[idx[rest] - 1]
            ext = _segmented_running_extreme(vals, seg_len, side > 0)
            if side > 0:
                trail = ext * (1.0 - stops.trailing_stop)
                stop = np.maximum(sl, trail)
            else:
                trail = ext * (1.0 + stops.trailing_stop)
                stop = np.minimum(sl, trail)
        else:
            trail = None
            stop = sl
        # A bar triggers if its open or its low reaches the stop, or its open or high the take-profit.
        if side > 0:
            anyhit = (np.minimum(ob, lb) <= stop) | (np.maximum(ob, hb) >= tp)
        else:
            anyhit = (np.maximum(ob, hb) >= stop) | (np.minimum(ob, lb) <= tp)
        hits = np.flatnonzero(anyhit)
        if len(hits) == 0:
            continue
        hs = sid[hits]
        firsts = hits[np.concatenate(([True], hs[1:] != hs[:-1]))]
        fseg = sid[firsts]
        fbar = idx[firsts]
        stop_f = stop[firsts]
        slip_f = sb[firsts]
        tp_f = tp[firsts]
        o_f = ob[firsts]
        if side > 0:
            gap_s, gap_t, hit_s = o_f <= stop_f, o_f >= tp_f, lb[firsts] <= stop_f
        else:
            gap_s, gap_t, hit_s = o_f >= stop_f, o_f <= tp_f, hb[firsts] >= stop_f
        price = np.where(
            gap_s,
            o_f * (1.0 - slip_f) if side > 0 else o_f * (1.0 + slip_f),
            np.where(
                gap_t,
                o_f,
                np.where(hit_s, stop_f * (1.0 - slip_f) if side > 0 else stop_f * (1.0 + slip_f), tp_f),
            ),
        )
        # Same precedence as FillModel.check_exit: gap stop, gap take-profit, stop in the bar, take-profit.
        is_stop = gap_s | (~gap_t & hit_s)
        if trail is not None:
            stop_reason = np.where(stop_f == sl[firsts], STOP_LOSS, TRAILING_STOP)
        else:
            stop_reason = np.full(len(firsts), STOP_LOSS)
        plan.exit_bar[fseg] = fbar
        plan.exit_price[fseg] = price
        plan.exit_reason[fseg] = np.where(is_stop, stop_reason, TAKE_PROFIT)
        plan.exit_maker[fseg] = ~is_stop


def _scan_exit(plan: _SymbolPlan, pf: Portfolio, s: int, start: int, end: int) -> tuple[int, float, int, bool] | None:
    """Protective exit of symbol ``s``'s current position from bar ``start`` (inclusive) to ``end`` (exclusive),
    using the position's current levels. Used when a position continues through an order or has a liquidation
    level; mirrors :meth:`FillModel.check_exit` bar by bar."""
    lv = pf.levels[s]
    if lv is None or start >= end:
        return None
    c = plan.c
    ob = c.open[start:end]
    hb = c.high[start:end]
    lb = c.low[start:end]
    m = end - start
    side = lv.side
    if lv.trail_on:
        src = hb if side > 0 else lb
        seq = np.empty(m)
        seq[0] = lv.extreme
        seq[1:] = src[:-1]
        ext = np.maximum.accumulate(seq) if side > 0 else np.minimum.accumulate(seq)
        trail = ext * lv.one_minus_tr if side > 0 else ext * lv.one_plus_tr
        stop = (
            np.maximum(np.maximum(lv.sl, trail), lv.liq) if side > 0 else np.minimum(np.minimum(lv.sl, trail), lv.liq)
        )
    else:
        trail = None
        level = max(lv.sl, lv.liq) if side > 0 else min(lv.sl, lv.liq)
        stop = np.full(m, level)
    tp = lv.tp
    if side > 0:
        anyhit = (ob <= stop) | (ob >= tp) | (lb <= stop) | (hb >= tp)
    else:
        anyhit = (ob >= stop) | (ob <= tp) | (hb >= stop) | (lb <= tp)
    k_arr = np.flatnonzero(anyhit)
    if len(k_arr) == 0:
        return None
    k = int(k_arr[0])
    bar = start + k
    o_k = float(ob[k])
    slip = plan.slip1(bar)
    stop_k = float(stop[k])
    if stop_k == lv.sl:
        reason = STOP_LOSS
    elif trail is not None and stop_k == float(trail[k]):
        reason = TRAILING_STOP
    else:
        reason = LIQUIDATION
    if side > 0:
        if o_k <= stop_k:
            return bar, o_k * (1.0 - slip), reason, False
        if o_k >= tp:
            return bar, o_k, TAKE_PROFIT, True
        if float(lb[k]) <= stop_k:
            return bar, stop_k * (1.0 - slip), reason, False
        return bar, tp, TAKE_PROFIT, True
    if o_k >= stop_k:
        return bar, o_k * (1.0 + slip), reason, False
    if o_k <= tp:
        return bar, o_k, TAKE_PROFIT, True
    if float(hb[k]) >= stop_k:
        return bar, stop_k * (1.0 + slip), reason, False
    return bar, tp, TAKE_PROFIT, True


def _liquidation_may_bind(lv: StopLevels) -> bool:
    """Whether the liquidation level is tighter than the other stops at entry (they only tighten later)."""
    if lv.side > 0:
        trail = lv.extreme * lv.one_minus_tr if lv.trail_on else -_INF
        return lv.liq > -_INF and lv.liq > max(lv.sl, trail)
    trail = lv.extreme * lv.one_plus_tr if lv.trail_on else _INF
    return lv.liq < _INF and lv.liq < min(lv.sl, trail)


def _sync_extreme(plan: _SymbolPlan, pf: Portfolio, s: int, upto: int, synced: list[int]) -> None:
    """Fold the highs (long) or lows (short) of bars ``synced[s] .. upto-1`` into the trailing extreme, as the
    event loop does after each bar the position survives."""
    lv = pf.levels[s]
    a = synced[s]
    if lv is not None and lv.trail_on and upto > a:
        if lv.side > 0:
            m = float(plan.c.high[a:upto].max())
            if m > lv.extreme:
                lv.extreme = m
        else:
            m = float(plan.c.low[a:upto].min())
            if m < lv.extreme:
                lv.extreme = m
    synced[s] = upto


def _schedule_exit(
    plan: _SymbolPlan, rt: _Runtime, pf: Portfolio, s: int, k: int, b: int, q_before: float
) -> tuple[int, float, int, bool] | None:
    """After order ``k`` filled at bar ``b``: the protective exit of the resulting position before the next
    order, if any. Fresh positions use the precomputed scan; continued ones (and liquidation levels tighter than
    the stops) are scanned from ``b`` with their current levels."""
    q = pf.qty[s]
    if q == 0.0:
        return None
    end = int(plan.order_bar[k + 1]) if k + 1 < len(plan.order_bar) else plan.n
    fresh = q_before == 0.0 or (q_before > 0.0) != (q > 0.0)
    lv = pf.levels[s]
    liq_binds = rt.margin and lv is not None and _liquidation_may_bind(lv)
    if fresh and not liq_binds:
        eb = int(plan.exit_bar[k])
        if eb < 0:
            return None
        return eb, float(plan.exit_price[k]), int(plan.exit_reason[k]), bool(plan.exit_maker[k])
    if rt.stops_on or liq_binds:
        return _scan_exit(plan, pf, s, b, end)
    return None


def _round_trips_apply(plan: _SymbolPlan, rt: _Runtime) -> bool:
    """Orders alternate between opening from flat (target > 0) and closing (target 0): every position is a
    simple round trip. True for the signal strategies with targets in {0, 1} on a spot account."""
    if not _spot_fast_loop_applies(rt):
        return False
    tg = plan.order_tgt
    return bool(np.array_equal(tg != 0.0, np.arange(len(tg)) % 2 == 0))


def _round_trip_loop(
    plan: _SymbolPlan, rt: _Runtime, pf: Portfolio, ts_arr: IntArray
) -> tuple[list[int], list[float], list[float]]:
    """:func:`_spot_fast_loop` when every position is a round trip (see :func:`_round_trips_apply`).

    Everything about a round trip except its size is known in advance: the entry fill (next open plus
    slippage), the exit (the precomputed protective exit, or the next order's open minus slippage) and the fee
    rates. Only the cash carries from one trade to the next, so the Python loop runs the cash recurrence alone
    -- the arithmetic of :func:`execute_one` (sizing from flat, capped to the cash), :meth:`Portfolio.increase`
    and :meth:`Portfolio.reduce`, in the same order -- and the fills, trades and P&L are then formed with numpy
    using the same operations. ``test_engine.py`` checks the result against the general loop and the event
    engine bit for bit."""
    ob = plan.order_bar
    nord = len(ob)
    n_rt = (nord + 1) // 2
    ent = np.arange(0, nord, 2)
    has_next = ent + 1 < nord
    b_e = ob[ent]
    price_e = plan.c.open[b_e] * (1.0 + plan.slip_at(b_e))
    # Exit of each round trip: protective (precomputed) first, else the closing order; none for a position
    # still open at the end.
    stop_bar = plan.exit_bar[ent]
    stopped = stop_bar >= 0
    x_bar = np.where(stopped, stop_bar, np.where(has_next, ob[np.minimum(ent + 1, nord - 1)], -1))
    closing = np.minimum(ent + 1, nord - 1)
    x_price = np.where(stopped, plan.exit_price[ent], plan.c.open[ob[closing]] * (1.0 - plan.slip_at(ob[closing])))
    x_reason = np.where(stopped, plan.exit_reason[ent], SIGNAL)
    x_maker = stopped & plan.exit_maker[ent]
    x_rate = np.where(x_maker, rt.maker, rt.taker)
    ff = rt.fixed_fraction
    assert ff is not None
    weight = rt.weights[0]
    lev = rt.max_leverage
    taker = rt.taker
    one_plus_taker = 1.0 + taker
    cash = pf.cash
    tg = plan.order_tgt[ent].tolist()
    pe = price_e.tolist()
    xp = x_price.tolist()
    xr = x_rate.tolist()
    exits = (x_bar >= 0).tolist()
    dq_l = [0.0] * n_rt
    mid_l = [0.0] * n_rt
    end_l = [0.0] * n_rt
    for k in range(n_rt):
        dq = 0.0
        if cash > 0.0:
            p = pe[k]
            # execute_one's sizing equity is cash + 0.0 * open, which is the cash itself (when positive).
            notional = tg[k] * ff * weight * cash
            cap = lev * cash
            if notional > cap:
                notional = cap
            if notional > 0.0:
                dq = notional / p
                affordable = cash / (p * one_plus_taker) * _CASH_SAFETY
                if dq > affordable:
                    dq = affordable
                en = dq * p
                cash = (cash - en) - en * taker
        dq_l[k] = dq
        mid_l[k] = cash
        if dq != 0.0 and exits[k]:
            xn = dq * xp[k]
            cash = (cash + xn) - xn * xr[k]
        end_l[k] = cash
    dq_a = np.asarray(dq_l)
    traded = dq_a != 0.0
    closed = traded & (x_bar >= 0)
    # Fees and P&L exactly as Portfolio.increase / Portfolio.reduce compute them.
    entry_notional = dq_a * price_e
    entry_fee = entry_notional * taker
    exit_notional = dq_a * x_price
    exit_fee = exit_notional * x_rate
    fees = entry_fee + exit_fee
    pnl = dq_a * (x_price - price_e) - fees
    ret = np.zeros(n_rt)
    np.divide(pnl, entry_notional, out=ret, where=traded)
    ts_e = ts_arr[b_e]
    ts_x = ts_arr[np.maximum(x_bar, 0)]

    def pairs(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Interleave per-round-trip entry and exit values in time order, keeping the fills that happened."""
        out: np.ndarray = np.stack((a, b), axis=1).ravel()[keep]
        return out

    keep = np.stack((traded, closed), axis=1).ravel()
    fill_fee = pairs(entry_fee, exit_fee, keep)
    # The portfolio adds fees one fill at a time; a cumulative sum adds them in the same order.
    fees_paid = float(np.cumsum(np.concatenate(([pf.fees_paid], fill_fee)))[-1])
    m = len(fill_fee)
    pf.fills.extend_columns(
        {
            "sym": np.zeros(m, dtype=np.int64),
            "bar": pairs(b_e, x_bar, keep),
            "ts": pairs(ts_e, ts_x, keep),
            "side": pairs(np.ones(n_rt, dtype=np.int64), -np.ones(n_rt, dtype=np.int64), keep),
            "qty": pairs(dq_a, dq_a, keep),
            "price": pairs(price_e, x_price, keep),
            "fee": fill_fee,
            "reason": pairs(np.full(n_rt, ENTRY, dtype=np.int64), x_reason.astype(np.int64), keep),
            "maker": pairs(np.zeros(n_rt, dtype=bool), x_maker, keep),
        }
    )
    ci = np.flatnonzero(closed)
    pf.trades.extend_columns(
        {
            "sym": np.zeros(len(ci), dtype=np.int64),
            "side": np.ones(len(ci), dtype=np.int64),
            "qty": dq_a[ci],
            "entry_bar": b_e[ci],
            "entry_ts": ts_e[ci],
            "entry_price": price_e[ci],
            "exit_bar": x_bar[ci],
            "exit_ts": ts_x[ci],
            "exit_price": x_price[ci],
            "fees": fees[ci],
            "pnl": pnl[ci],
            "ret": ret[ci],
            "reason": x_reason[ci].astype(np.int64),
        }
    )
    # Equity states: after each entry (unless it exits on the same bar) and after each exit.
    state_keep = np.stack((traded & (x_bar != b_e), closed), axis=1).ravel()
    sbar = [-1, *pairs(b_e, x_bar, state_keep).tolist()]
    scash = [pf.cash, *pairs(np.asarray(mid_l), np.asarray(end_l), state_keep).tolist()]
    sqty = [0.0, *pairs(dq_a, np.zeros(n_rt), state_keep).tolist()]
    pf.cash = cash
    pf.fees_paid = fees_paid
    last = n_rt - 1
    if n_rt and traded[last] and not closed[last]:
        pf.qty[0] = dq_l[last]
        pf.avg[0] = pe[last]
        pf.entry_fees[0] = float(entry_fee[last])
        pf.entry_bar[0] = int(b_e[last])
        pf.entry_ts[0] = int(ts_e[last])
    return sbar, scash, sqty


def _spot_fast_loop_applies(rt: _Runtime) -> bool:
    return not rt.margin and not rt.track_kelly and rt.vol_lookback == 0 and rt.fixed_fraction is not None


def _spot_fast_loop(
    plan: _SymbolPlan, rt: _Runtime, pf: Portfolio, ts_arr: IntArray
) -> tuple[list[int], list[float], list[float]]:
    """:func:`_single_symbol_loop` for the most common account (one symbol, spot, fixed-fraction sizing).

    Opening a position from flat and closing it completely are the only orders that occur with targets in
    {0, 1}; for those two the sizing of :func:`execute_one` is written out here and the fills go straight to
    :meth:`Portfolio.increase` / :meth:`Portfolio.reduce` (same arithmetic, in the same order, fewer calls).
    Anything else (resizing an open position) goes through :func:`execute_one`. ``test_engine.py`` checks this
    loop against the general one and against the event engine."""
    ob_arr = plan.order_bar
    ob = ob_arr.tolist()
    tg = plan.order_tgt.tolist()
    o_ob = plan.c.open[ob_arr].tolist()
    s_ob = plan.slip_at(ob_arr).tolist()
    ts_ob = ts_arr[ob_arr].tolist()
    stops = rt.stops_on
    eb_l = plan.exit_bar.tolist()
    ep_l = plan.exit_price.tolist()
    er_l = plan.exit_reason.tolist()
    em_l = plan.exit_maker.tolist()
    ts_eb = ts_arr[np.maximum(plan.exit_bar, 0)].tolist()
    trail = rt.config.stops.trailing_stop is not None
    synced = [0]
    sbar: list[int] = [-1]
    scash: list[float] = [pf.cash]
    sqty: list[float] = [0.0]
    qty = pf.qty
    reduce = pf.reduce
    increase = pf.increase
    maker = rt.maker
    taker = rt.taker
    ff_w = rt.fixed_fraction
    assert ff_w is not None
    weight = rt.weights[0]
    lev = rt.max_leverage
    one_plus_taker = 1.0 + taker
    for k in range(len(ob)):
        b = ob[k]
        q0 = qty[0]
        t_k = tg[k]
        o_k = o_ob[k]
        slip = s_ob[k]
        ts = ts_ob[k]
        if q0 == 0.0 and t_k > 0.0:
            # execute_one from flat: size, cap to the cash, buy.
            equity = pf.cash + q0 * o_k
            if equity > 0.0:
                price = o_k * (1.0 + slip)
                notional = t_k * ff_w * weight * equity
                cap = lev * equity
                if notional > cap:
                    notional = cap
                if notional > 0.0:
                    dq = notional / price
                    cash = pf.cash
                    if cash > 0.0:
                        affordable = cash / (price * one_plus_taker) * _CASH_SAFETY
                        if dq > affordable:
                            dq = affordable
                        increase(0, 1, dq, price, taker, b, ts, equity)
        elif q0 > 0.0 and t_k == 0.0:
            # execute_one to flat: sell everything at the open.
            reduce(0, q0, o_k * (1.0 - slip), taker, b, ts, SIGNAL, False)
        else:
            if trail and q0 != 0.0 and t_k != 0.0:
                _sync_extreme(plan, pf, 0, b, synced)
            execute_one(rt, pf, 0, t_k, SIGNAL, b, ts, o_k, slip, _NAN, pf.cash + q0 * o_k)
        q = qty[0]
        found: tuple[int, float, int, bool] | None = None
        if q != 0.0 and stops:
            synced[0] = b
            if q0 == 0.0:
                if eb_l[k] >= 0:
                    found = (eb_l[k], ep_l[k], er_l[k], em_l[k])
            else:
                found = _schedule_exit(plan, rt, pf, 0, k, b, q0)
        if found is None:
            sbar.append(b)
            scash.append(pf.cash)
            sqty.append(q)
            continue
        exit_bar, price, reason, m = found
        if exit_bar != b:
            sbar.append(b)
            scash.append(pf.cash)
            sqty.append(q)
        ets = ts_eb[k] if q0 == 0.0 else int(ts_arr[exit_bar])
        reduce(0, q, price, maker if m else taker, exit_bar, ets, reason, m)
        sbar.append(exit_bar)
        scash.append(pf.cash)
        sqty.append(qty[0])
    return sbar, scash, sqty


def _single_symbol_loop(
    plan: _SymbolPlan, rt: _Runtime, pf: Portfolio, ts_arr: IntArray
) -> tuple[list[int], list[float], list[float]]:
    """The event loop of :func:`run_vectorized` for one symbol: visits orders and exits only."""
    ob_arr = plan.order_bar
    ob = ob_arr.tolist()
    tg = plan.order_tgt.tolist()
    o_ob = plan.c.open[ob_arr].tolist()
    s_ob = plan.slip_at(ob_arr).tolist()
    v_ob = plan.vol_at(ob_arr).tolist()
    ts_ob = ts_arr[ob_arr].tolist()
    precomputed = rt.stops_on and not rt.margin
    if precomputed:
        eb_l = plan.exit_bar.tolist()
        ep_l = plan.exit_price.tolist()
        er_l = plan.exit_reason.tolist()
        em_l = plan.exit_maker.tolist()
        ts_eb = ts_arr[np.maximum(plan.exit_bar, 0)].tolist()
    trail = rt.config.stops.trailing_stop is not None
    synced = [0]
    sbar: list[int] = [-1]
    scash: list[float] = [pf.cash]
    sqty: list[float] = [0.0]
    qty = pf.qty
    reduce = pf.reduce
    maker = rt.maker
    taker = rt.taker
    for k in range(len(ob)):
        b = ob[k]
        q0 = qty[0]
        t_k = tg[k]
        if trail and q0 != 0.0 and t_k != 0.0 and (t_k > 0.0) == (q0 > 0.0):
            # The position may continue through this order: bring its trailing extreme up to date.
            _sync_extreme(plan, pf, 0, b, synced)
        o_k = o_ob[k]
        execute_one(rt, pf, 0, t_k, SIGNAL, b, ts_ob[k], o_k, s_ob[k], v_ob[k], pf.cash + q0 * o_k)
        q = qty[0]
        found: tuple[int, float, int, bool] | None = None
        if q != 0.0:
            synced[0] = b
            if precomputed and (q0 == 0.0 or (q0 > 0.0) != (q > 0.0)):
                if eb_l[k] >= 0:
                    found = (eb_l[k], ep_l[k], er_l[k], em_l[k])
            elif rt.check_exits:
                found = _schedule_exit(plan, rt, pf, 0, k, b, q0)
        if found is None or found[0] != b:
            sbar.append(b)
            scash.append(pf.cash)
            sqty.append(q)
        if found is not None:
            exit_bar, price, reason, m = found
            ets = ts_eb[k] if precomputed and exit_bar == eb_l[k] else int(ts_arr[exit_bar])
            reduce(0, q if q > 0 else -q, price, maker if m else taker, exit_bar, ets, reason, m)
            sbar.append(exit_bar)
            scash.append(pf.cash)
            sqty.append(qty[0])
    return sbar, scash, sqty


def _multi_symbol_loop(
    plans: list[_SymbolPlan], rt: _Runtime, pf: Portfolio, ts_arr: IntArray, n: int
) -> tuple[list[int], list[float], list[list[float]]]:
    """The event loop of :func:`run_vectorized` for several symbols sharing cash: visits, in bar order, the
    bars where some symbol has an order or a protective exit."""
    ns = len(plans)
    nxt = [0] * ns
    ext_bar = [-1] * ns
    ext_info: list[tuple[float, int, bool]] = [(0.0, 0, False)] * ns
    synced = [0] * ns
    sbar: list[int] = [-1]
    scash: list[float] = [pf.cash]
    sqty: list[list[float]] = [[0.0] for _ in range(ns)]
    big = n + 1
    order_bars = [p.order_bar.tolist() for p in plans]
    order_tgts = [p.order_tgt.tolist() for p in plans]
    n_orders = [len(b) for b in order_bars]
    trail = rt.config.stops.trailing_stop is not None
    while True:
        b = big
        for s in range(ns):
            k = nxt[s]
            if k < n_orders[s] and order_bars[s][k] < b:
                b = order_bars[s][k]
            if 0 <= ext_bar[s] < b:
                b = ext_bar[s]
        if b == big:
            break
        ts = int(ts_arr[b])
        ordering = [s for s in range(ns) if nxt[s] < n_orders[s] and order_bars[s][nxt[s]] == b]
        if ordering:
            o_b = [float(p.c.open[b]) for p in plans]
            slips = [p.slip1(b) for p in plans]
            vols = [p.vol1(b) for p in plans]
            if trail:
                for s in ordering:
                    q_s = pf.qty[s]
                    t_s = order_tgts[s][nxt[s]]
                    if q_s != 0.0 and t_s != 0.0 and (t_s > 0.0) == (q_s > 0.0):
                        _sync_extreme(plans[s], pf, s, b, synced)
            before = [pf.qty[s] for s in ordering]
            execute_orders(rt, pf, b, ts, o_b, slips, vols, [(s, order_tgts[s][nxt[s]], SIGNAL) for s in ordering])
            for s, q0 in zip(ordering, before, strict=True):
                k = nxt[s]
                nxt[s] = k + 1
                ext_bar[s] = -1
                if pf.qty[s] != 0.0:
                    synced[s] = b
                    if rt.check_exits:
                        found = _schedule_exit(plans[s], rt, pf, s, k, b, q0)
                        if found is not None:
                            ext_bar[s] = found[0]
                            ext_info[s] = (found[1], found[2], found[3])
        for s in range(ns):
            if ext_bar[s] == b:
                price, reason, is_maker = ext_info[s]
                q = pf.qty[s]
                pf.reduce(s, q if q > 0 else -q, price, rt.maker if is_maker else rt.taker, b, ts, reason, is_maker)
                ext_bar[s] = -1
        sbar.append(b)
        scash.append(pf.cash)
        for s in range(ns):
            sqty[s].append(pf.qty[s])
    return sbar, scash, sqty


def run_vectorized(
    candles: Sequence[Candles],
    targets: Sequence[FloatArray],
    config: BacktestConfig,
    symbols: Sequence[str],
    bar_ms: int | None = None,
    _force_general: bool = False,
) -> BacktestResult:
    """Vectorised backtest of precomputed target arrays (one per symbol, aligned candles).

    Risk halts need the bar-by-bar equity and are only supported by the event engine (:func:`backtest` picks it
    automatically).
    """
    if config.risk.active:
        raise ValueError("risk halts (max_drawdown, max_daily_loss) need the event engine")
    ns = len(candles)
    n = len(candles[0])
    bms = bar_ms or bar_ms_of(candles[0].ts)
    rt = _Runtime(config, symbols, bms)
    pf = Portfolio(ns, config.initial_cash, rt.fill_model, rt.margin, rt.track_kelly, rt.check_exits)
    plans = [_SymbolPlan(c, t, rt) for c, t in zip(candles, targets, strict=True)]
    for p in plans:
        _precompute_exits(p, rt)
    ts_arr = candles[0].ts
    if ns == 1:
        if _force_general:
            loop = _single_symbol_loop
        elif _round_trips_apply(plans[0], rt):
            loop = _round_trip_loop
        elif _spot_fast_loop_applies(rt):
            loop = _spot_fast_loop
        else:
            loop = _single_symbol_loop
        sbar, scash, q1 = loop(plans[0], rt, pf, ts_arr)
        sqty = [q1]
    else:
        sbar, scash, sqty = _multi_symbol_loop(plans, rt, pf, ts_arr, n)
    # C. mark to market: each recorded state holds from its bar until the next recorded bar.
    starts = np.asarray(sbar, dtype=np.int64)
    starts[0] = 0
    lengths = np.diff(np.append(starts, n))
    equity = np.repeat(np.asarray(scash), lengths)
    positions = np.empty((ns, n))
    gross: FloatArray | None = None
    for s in range(ns):
        qs = positions[s]
        qs[:] = np.repeat(np.asarray(sqty[s]), lengths)
        cl = candles[s].close
        equity += qs * cl
        # 0.0 + x == x, so the first symbol's term is the event loop's running sum exactly.
        g = np.abs(qs)
        g *= cl
        if gross is None:
            gross = g
        else:
            gross += g
    assert gross is not None
    exposure = np.full(n, np.nan)
    np.divide(gross, equity, out=exposure, where=equity > 0.0)
    last_close = [float(c.close[-1]) for c in candles] if n else [_NAN] * ns
    if config.close_at_end and n:
        for s in range(ns):
            q = pf.qty[s]
            if q != 0.0:
                sl_end = plans[s].slip1(n)
                price = last_close[s] * (1.0 - sl_end) if q > 0 else last_close[s] * (1.0 + sl_end)
                pf.reduce(s, abs(q), price, rt.taker, n - 1, int(ts_arr[n - 1]), END_OF_DATA, False)
        equity[-1] = pf.cash
    return BacktestResult(
        symbols=list(symbols),
        ts=np.asarray(ts_arr, dtype=np.int64),
        equity=equity,
        exposure=exposure,
        positions=positions,
        benchmark=_benchmark(config.initial_cash, candles),
        trade_log=pf.trades,
        fill_log=pf.fills,
        initial_cash=config.initial_cash,
        fees_paid=pf.fees_paid,
        engine="vectorized",
        open_positions=_open_positions(pf, list(symbols), last_close),
        bar_ms=bms,
    )


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def _as_symbol_map(candles: Candles | Mapping[str, Candles]) -> dict[str, Candles]:
    if isinstance(candles, Candles):
        return {"asset": candles}
    return dict(candles)


def backtest(
    candles: Candles | Mapping[str, Candles],
    strategy: Strategy | Mapping[str, Strategy],
    config: BacktestConfig | None = None,
    engine: Literal["auto", "vectorized", "event"] = "auto",
    forecasts: Mapping[str, FloatArray] | FloatArray | None = None,
    bar_ms: int | None = None,
) -> BacktestResult:
    """Run ``strategy`` over ``candles`` (one :class:`Candles` or ``{symbol: Candles}`` with identical
    timestamps, see :func:`aaiti.trading.candles.align`).

    ``engine="auto"`` uses the vectorised path unless risk halts are configured (they need the event loop).
    """
    cfg = config or BacktestConfig()
    cmap = _as_symbol_map(candles)
    symbols = list(cmap)
    clist = [cmap[s] for s in symbols]
    if not clist or len(clist[0]) == 0:
        raise ValueError("no candles")
    ts0 = clist[0].ts
    for c in clist[1:]:
        if not np.array_equal(c.ts, ts0):
            raise ValueError("candles of different symbols must share timestamps (use candles.align)")
    strats = [strategy[s] for s in symbols] if isinstance(strategy, Mapping) else [strategy] * len(symbols)
    if forecasts is None:
        fl: list[FloatArray | None] = [None] * len(symbols)
    elif isinstance(forecasts, Mapping):
        fl = [forecasts.get(s) for s in symbols]
    else:
        fl = [forecasts] * len(symbols)
    bms = bar_ms or bar_ms_of(ts0)
    use = engine
    if use == "auto":
        use = "event" if cfg.risk.active else "vectorized"
    if use == "vectorized":
        tg = [s.targets(c, f) for s, c, f in zip(strats, clist, fl, strict=True)]
        return run_vectorized(clist, tg, cfg, symbols, bms)
    eng = EventEngine(symbols, strats, cfg, bms)
    eng.run(clist, fl if any(f is not None for f in fl) else None)
    if cfg.close_at_end:
        eng.close_all()
    return eng.result()
