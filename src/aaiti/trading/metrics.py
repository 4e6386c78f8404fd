"""Performance metrics: the one place every number on a backtest or bot report is computed.

Conventions (``docs/metrics.md`` has every formula with a worked example):

- **Daily returns.** Bar equity (marked at each bar's close) is resampled to UTC days by taking the last bar of
  each day; the initial cash is the value before the first day. ``r_d = E_d / E_{d-1} - 1``. Days without any bar
  (gaps in the data) are skipped, not filled.
- **Annualisation** uses ``periods_per_year`` (365 by default: crypto trades every day).
- **Undefined is null.** When a metric needs more data than exists (fewer than ``min_periods`` daily returns for
  the annualised ones, fewer than two trades for SQN, ...) or its denominator is zero (no volatility, no losing
  trade, no drawdown), the value is ``None`` with a ``reason``. No metric is ever NaN or +/-infinity.
- Returns and drawdowns are fractions (``0.12`` = 12 %); drawdowns are negative; money is in quote currency;
  times are days.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aaiti.trading.candles import FloatArray, IntArray
from aaiti.trading.engine import BacktestResult
from aaiti.trading.portfolio import Trade, TradeLog

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric's value, or ``None`` with the reason it is undefined."""

    value: float | None
    reason: str | None = None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "unit": self.unit}


def _ok(value: float, unit: str) -> Metric:
    v = float(value)
    if not math.isfinite(v):
        return Metric(None, "not a finite number", unit)
    return Metric(v, None, unit)


def _na(reason: str, unit: str) -> Metric:
    return Metric(None, reason, unit)


# --- series helpers ---------------------------------------------------------------------------------------------


def daily_equity(ts: IntArray, equity: FloatArray, initial: float) -> tuple[IntArray, FloatArray]:
    """``(day_start_ms, equity)`` with the last equity of each UTC day, preceded by the initial value (stamped
    one day before the first day)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    day = ts // DAY_MS
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    days = day[last] * DAY_MS
    return np.concatenate(([days[0] - DAY_MS], days)), np.concatenate(([initial], equity[last]))


def simple_returns(values: FloatArray) -> FloatArray:
    """``v[i] / v[i-1] - 1``; a step from a non-positive value has no return and is dropped."""
    prev = values[:-1]
    ok = prev > 0
    return values[1:][ok] / prev[ok] - 1.0


def drawdown_series(equity: FloatArray) -> FloatArray:
    """``E_t / max(E_0..E_t) - 1`` (0 at new highs, negative below them)."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, equity / peak - 1.0, -1.0)
    return dd


def downsample(ts: IntArray, values: FloatArray, max_points: int) -> tuple[IntArray, FloatArray]:
    """At most about ``max_points`` points for a chart: per bucket the first, the lowest and the highest point, so
    drawdowns and peaks stay visible."""
    n = len(values)
    if n <= max_points or max_points < 3:
        return ts, values
    buckets = max(1, max_points // 3)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for a, b in itertools.pairwise(edges.tolist()):
        if b <= a:
            continue
        seg = values[a:b]
        keep.extend((a, a + int(np.argmin(seg)), a + int(np.argmax(seg))))
    keep.append(n - 1)
    idx = np.unique(np.asarray(keep))
    return ts[idx], values[idx]


# --- individual metrics (usable on their own) --------------------------------------------------------------------


def total_return(initial: float, final: float) -> Metric:
    """``E_end / E_0 - 1``."""
    return _ok(final / initial - 1.0, "fraction")


def cagr(initial: float, final: float, n_periods: int, periods_per_year: float, min_periods: int) -> Metric:
    """``(E_end / E_0) ** (periods_per_year / n) - 1`` with ``n`` daily returns."""
    if n_periods < min_periods:
        return _na(f"needs at least {min_periods} daily returns, have {n_periods}", "fraction")
    if final <= 0:
        return _na("equity fell to zero or below", "fraction")
    return _ok((final / initial) ** (periods_per_year / n_periods) - 1.0, "fraction")


def annual_volatility(r: FloatArray, periods_per_year: float, min_periods: int) -> Metric:
    """``std(r, ddof=1) * sqrt(periods_per_year)``."""
    if len(r) < max(2, min_periods):
        return _na(f"needs at least {max(2, min_periods)} daily returns, have {len(r)}", "fraction")
    return _ok(float(np.std(r, ddof=1)) * math.sqrt(periods_per_year), "fraction")


def _per_period_rate(annual: float, periods_per_year: float) -> float:
    return float((1.0 + annual) ** (1.0 / periods_per_year) - 1.0)


def sharpe_ratio(r: FloatArray, periods_per_year: float, min_periods: int, risk_free: float = 0.0) -> Metric:
    """``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``; ``rf`` is the annual risk-free rate
    converted to a daily one."""
    if len(r) < max(2, min_periods):
        return _na(f"needs at least {max(2, min_periods)} daily returns, have {len(r)}", "ratio")
    adj = r - _per_period_rate(risk_free, periods_per_year)
    sd = float(np.std(adj, ddof=1))
    if sd == 0.0:
        return _na("returns have no variance", "ratio")
    return _ok(float(np.mean(adj)) / sd * math.sqrt(periods_per_year), "ratio")


def sortino_ratio(r: FloatArray, periods_per_year: float, min_periods: int, risk_free: float = 0.0) -> Metric:
    """``mean(r - t) * periods_per_year / (sqrt(mean(min(r - t, 0)^2)) * sqrt(periods_per_year))`` with the
    target ``t`` = the daily risk-free rate."""
    if len(r) < max(2, min_periods):
        return _na(f"needs at least {max(2, min_periods)} daily returns, have {len(r)}", "ratio")
    adj = r - _per_period_rate(risk_free, periods_per_year)
    downside = math.sqrt(float(np.mean(np.minimum(adj, 0.0) ** 2))) * math.sqrt(periods_per_year)
    if downside == 0.0:
        return _na("no daily return below the target", "ratio")
    return _ok(float(np.mean(adj)) * periods_per_year / downside, "ratio")


@dataclass(frozen=True, slots=True)
class DrawdownStats:
    max_drawdown: float
    peak_index: int
    trough_index: int
    longest_bars: int
    longest_days: float


def drawdown_stats(ts: IntArray, equity: FloatArray) -> DrawdownStats:
    """Deepest drawdown (with its peak and trough positions) and the longest time under water: from a peak to
    the first point back at or above it, or to the end if it never recovered. ``ts``/``equity`` include the
    starting point."""
    dd = drawdown_series(equity)
    trough = int(np.argmin(dd))
    peak = int(np.argmax(equity[: trough + 1]))
    under = dd < 0
    longest_bars = 0
    longest_ms = 0
    if under.any():
        # Runs of consecutive underwater points; each starts right after its peak.
        edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            peak_i = a - 1
            end_i = b if b < len(equity) else len(equity) - 1
            bars = end_i - peak_i
            span = int(ts[end_i] - ts[peak_i])
            if span > longest_ms or (span == longest_ms and bars > longest_bars):
                longest_ms = span
                longest_bars = bars
    return DrawdownStats(float(dd[trough]), peak, trough, longest_bars, longest_ms / DAY_MS)


def ulcer_index(daily_values: FloatArray) -> Metric:
    """``sqrt(mean((100 * drawdown_d)^2))`` over the daily equity (in percent)."""
    if len(daily_values) < 2:
        return _na("needs at least two days", "percent")
    dd = drawdown_series(daily_values) * 100.0
    return _ok(math.sqrt(float(np.mean(dd**2))), "percent")


def value_at_risk(r: FloatArray, level: float, min_samples: int = 20) -> tuple[Metric, Metric]:
    """Historical one-day VaR and CVaR at ``level`` (e.g. 0.95), as returns (negative = loss): VaR is the
    ``1 - level`` quantile of the daily returns (linear interpolation), CVaR the mean of the worst
    ``floor((n - 1) * (1 - level)) + 1`` returns."""
    if len(r) < min_samples:
        reason = f"needs at least {min_samples} daily returns, have {len(r)}"
        return _na(reason, "fraction"), _na(reason, "fraction")
    cutoff = 1.0 - level
    var = float(np.percentile(r, 100.0 * cutoff))
    k = int((len(r) - 1) * cutoff)
    cvar = float(np.mean(np.partition(r, k)[: k + 1]))
    return _ok(var, "fraction"), _ok(cvar, "fraction")


def alpha_beta(
    r: FloatArray, b: FloatArray, periods_per_year: float, min_periods: int, risk_free: float = 0.0
) -> tuple[Metric, Metric]:
    """Against the benchmark's daily returns ``b``: ``beta = cov(r, b) / var(b)`` and the annualised alpha
    ``(1 + mean(r - rf - beta * (b - rf))) ** periods_per_year - 1``."""
    if len(r) < max(2, min_periods) or len(r) != len(b):
        reason = f"needs at least {max(2, min_periods)} aligned daily returns, have {min(len(r), len(b))}"
        return _na(reason, "fraction"), _na(reason, "ratio")
    rf = _per_period_rate(risk_free, periods_per_year)
    ar = r - rf
    ab = b - rf
    bres = ab - np.mean(ab)
    var_b = float(np.mean(bres * bres))
    if var_b == 0.0:
        reason = "the benchmark has no variance"
        return _na(reason, "fraction"), _na(reason, "ratio")
    beta = float(np.mean(bres * ar)) / var_b
    alpha = (1.0 + float(np.mean(ar - beta * ab))) ** periods_per_year - 1.0
    return _ok(alpha, "fraction"), _ok(beta, "ratio")


def _streaks(pnl: Sequence[float]) -> tuple[int, int]:
    best_w = best_l = w = lo = 0
    for p in pnl:
        if p > 0:
            w += 1
            lo = 0
        elif p < 0:
            lo += 1
            w = 0
        else:
            w = lo = 0
        best_w = max(best_w, w)
        best_l = max(best_l, lo)
    return best_w, best_l


def _trade_arrays(trades: TradeLog | Sequence[Trade]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """P&L, return and holding time (days) of each trade."""
    if isinstance(trades, TradeLog):
        pnl = trades.array("pnl")
        ret = trades.array("ret")
        hold = (trades.array("exit_ts", np.int64) - trades.array("entry_ts", np.int64)) / DAY_MS
        return pnl, ret, hold
    pnl = np.array([t.pnl for t in trades], dtype=np.float64)
    ret = np.array([t.ret for t in trades], dtype=np.float64)
    hold = np.array([(t.exit_ts - t.entry_ts) / DAY_MS for t in trades], dtype=np.float64)
    return pnl, ret, hold


def trade_metrics(trades: TradeLog | Sequence[Trade]) -> dict[str, Metric]:
    """Statistics of closed trades, in the order they closed."""
    out: dict[str, Metric] = {}
    n = len(trades)
    out["trades"] = Metric(float(n), None, "count")
    if n == 0:
        reason = "no closed trades"
        for key, unit in (
            ("win_rate", "fraction"),
            ("avg_win", "currency"),
            ("avg_loss", "currency"),
            ("avg_win_return", "fraction"),
            ("avg_loss_return", "fraction"),
            ("profit_factor", "ratio"),
            ("expectancy", "currency"),
            ("expectancy_return", "fraction"),
            ("sqn", "ratio"),
            ("best_trade", "fraction"),
            ("worst_trade", "fraction"),
            ("avg_holding_days", "days"),
            ("max_win_streak", "count"),
            ("max_loss_streak", "count"),
        ):
            out[key] = _na(reason, unit)
        return out
    pnl, ret, hold = _trade_arrays(trades)
    wins = pnl > 0
    losses = pnl < 0
    out["win_rate"] = _ok(wins.sum() / n, "fraction")
    out["avg_win"] = _ok(pnl[wins].mean(), "currency") if wins.any() else _na("no winning trades", "currency")
    out["avg_loss"] = _ok(pnl[losses].mean(), "currency") if losses.any() else _na("no losing trades", "currency")
    out["avg_win_return"] = _ok(ret[wins].mean(), "fraction") if wins.any() else _na("no winning trades", "fraction")
    out["avg_loss_return"] = (
        _ok(ret[losses].mean(), "fraction") if losses.any() else _na("no losing trades", "fraction")
    )
    gross_loss = -pnl[losses].sum()
    out["profit_factor"] = (
        _ok(pnl[wins].sum() / gross_loss, "ratio") if gross_loss > 0 else _na("no losing trades", "ratio")
    )
    out["expectancy"] = _ok(pnl.mean(), "currency")
    out["expectancy_return"] = _ok(ret.mean(), "fraction")
    if n < 2:
        out["sqn"] = _na("needs at least 2 trades", "ratio")
    else:
        sd = float(np.std(pnl, ddof=1))
        out["sqn"] = (
            _ok(math.sqrt(n) * pnl.mean() / sd, "ratio") if sd > 0 else _na("all trades had the same P&L", "ratio")
        )
    out["best_trade"] = _ok(ret.max(), "fraction")
    out["worst_trade"] = _ok(ret.min(), "fraction")
    out["avg_holding_days"] = _ok(hold.mean(), "days")
    ws, ls = _streaks(pnl.tolist())
    out["max_win_streak"] = Metric(float(ws), None, "count")
    out["max_loss_streak"] = Metric(float(ls), None, "count")
    return out


# --- the report --------------------------------------------------------------------------------------------------


def performance_metrics(
    ts: IntArray,
    equity: FloatArray,
    initial_cash: float,
    *,
    benchmark: FloatArray | None = None,
    in_market: np.ndarray | None = None,
    trades: TradeLog | Sequence[Trade] = (),
    fees_paid: float | None = None,
    periods_per_year: float = 365.0,
    risk_free: float = 0.0,
    var_level: float = 0.95,
    min_periods: int = 30,
) -> dict[str, Metric]:
    """Every metric from an equity curve (one value per bar, marked at the close; ``ts`` = bar open times) and
    optional benchmark equity, in-market mask, trades and fees. Used for backtests and bots alike."""
    m: dict[str, Metric] = {}
    n_bars = len(equity)
    final = float(equity[-1]) if n_bars else initial_cash
    m["start_equity"] = _ok(initial_cash, "currency")
    m["end_equity"] = _ok(final, "currency")
    m["total_return"] = total_return(initial_cash, final)
    _, day_eq = daily_equity(ts, equity, initial_cash)
    r = simple_returns(day_eq)
    m["days"] = Metric(float(len(r)), None, "count")
    m["cagr"] = cagr(initial_cash, final, len(r), periods_per_year, min_periods)
    m["volatility"] = annual_volatility(r, periods_per_year, min_periods)
    m["sharpe"] = sharpe_ratio(r, periods_per_year, min_periods, risk_free)
    m["sortino"] = sortino_ratio(r, periods_per_year, min_periods, risk_free)
    if n_bars:
        full_ts = np.concatenate(([ts[0]], ts))
        full_eq = np.concatenate(([initial_cash], equity))
        dd = drawdown_stats(full_ts, full_eq)
        m["max_drawdown"] = _ok(dd.max_drawdown, "fraction")
        m["max_drawdown_duration_days"] = _ok(dd.longest_days, "days")
        m["max_drawdown_duration_bars"] = Metric(float(dd.longest_bars), None, "count")
        cg = m["cagr"].value
        if cg is None:
            m["calmar"] = _na(m["cagr"].reason or "CAGR undefined", "ratio")
        elif dd.max_drawdown == 0.0:
            m["calmar"] = _na("no drawdown", "ratio")
        else:
            m["calmar"] = _ok(cg / abs(dd.max_drawdown), "ratio")
    else:
        for key, unit in (
            ("max_drawdown", "fraction"),
            ("max_drawdown_duration_days", "days"),
            ("max_drawdown_duration_bars", "count"),
            ("calmar", "ratio"),
        ):
            m[key] = _na("no bars", unit)
    m["ulcer_index"] = ulcer_index(day_eq)
    var, cvar = value_at_risk(r, var_level)
    m["var"] = var
    m["cvar"] = cvar
    if in_market is not None and n_bars:
        m["exposure_time"] = _ok(float(np.mean(in_market)), "fraction")
    else:
        m["exposure_time"] = _na("no position data", "fraction")
    if benchmark is not None and n_bars:
        _, bench_day = daily_equity(ts, benchmark, initial_cash)
        b = simple_returns(bench_day)
        m["benchmark_return"] = total_return(initial_cash, float(benchmark[-1]))
        m["benchmark_cagr"] = cagr(initial_cash, float(benchmark[-1]), len(b), periods_per_year, min_periods)
        if len(b) == len(r):
            m["alpha"], m["beta"] = alpha_beta(r, b, periods_per_year, min_periods, risk_free)
        else:
            reason = "equity fell to zero; returns no longer align with the benchmark"
            m["alpha"], m["beta"] = _na(reason, "fraction"), _na(reason, "ratio")
    else:
        for key, unit in (
            ("benchmark_return", "fraction"),
            ("benchmark_cagr", "fraction"),
            ("alpha", "fraction"),
            ("beta", "ratio"),
        ):
            m[key] = _na("no benchmark", unit)
    m.update(trade_metrics(trades))
    if fees_paid is not None:
        m["fees_paid"] = _ok(fees_paid, "currency")
        m["fees_share_of_initial"] = _ok(fees_paid / initial_cash, "fraction")
    else:
        m["fees_paid"] = _na("no fill data", "currency")
        m["fees_share_of_initial"] = _na("no fill data", "fraction")
    return m


def compute_metrics(
    result: BacktestResult,
    *,
    periods_per_year: float = 365.0,
    risk_free: float = 0.0,
    var_level: float = 0.95,
    min_periods: int = 30,
) -> dict[str, Metric]:
    """:func:`performance_metrics` of a backtest result (benchmark = frictionless buy-and-hold)."""
    return performance_metrics(
        result.ts,
        result.equity,
        result.initial_cash,
        benchmark=result.benchmark,
        in_market=np.any(result.positions != 0.0, axis=0) if result.positions.size else None,
        trades=result.trade_log,
        fees_paid=result.fees_paid,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        var_level=var_level,
        min_periods=min_periods,
    )


def metrics_to_dict(metrics: dict[str, Metric]) -> dict[str, dict[str, Any]]:
    """JSON-ready form: ``{name: {"value": float | None, "reason": str | None, "unit": str}}``."""
    return {k: v.to_dict() for k, v in metrics.items()}
