"""Metrics: hand-computed golden values, nulls with reasons, and a cross-check against empyrical-reloaded."""

from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from aaiti.data import load_bundled
from aaiti.trading.engine import BacktestConfig, backtest
from aaiti.trading.metrics import (
    DAY_MS,
    Metric,
    compute_metrics,
    daily_equity,
    downsample,
    drawdown_stats,
    metrics_to_dict,
    performance_metrics,
    simple_returns,
    trade_metrics,
)
from aaiti.trading.portfolio import Trade
from aaiti.trading.strategies import create_strategy

T0 = 1_600_041_600_000  # a UTC midnight


def _trade(pnl: float, ret: float, days: float = 1.0) -> Trade:
    return Trade("X", 1, 1.0, 0, T0, 100.0, 1, T0 + int(days * DAY_MS), 100.0 + pnl, 0.0, pnl, ret, "signal")


# --- golden values ------------------------------------------------------------------------------------------


def test_golden_equity_metrics() -> None:
    # Initial 100, then daily closes 110, 99, 118.8, 118.8: returns +10 %, -10 %, +20 %, 0 %.
    ts = T0 + np.arange(4, dtype=np.int64) * DAY_MS
    equity = np.array([110.0, 99.0, 118.8, 118.8])
    m = performance_metrics(ts, equity, 100.0, min_periods=2)
    assert m["total_return"].value == pytest.approx(0.188)
    # mean 0.05, sample std sqrt(0.05 / 3) = 0.1290994
    assert m["volatility"].value == pytest.approx(0.1290994449 * math.sqrt(365))
    assert m["sharpe"].value == pytest.approx(0.05 / 0.1290994449 * math.sqrt(365))
    # downside deviation sqrt(0.01 / 4) = 0.05 per day
    assert m["sortino"].value == pytest.approx(0.05 * 365 / (0.05 * math.sqrt(365)))
    assert m["max_drawdown"].value == pytest.approx(-0.1)
    assert m["max_drawdown_duration_days"].value == pytest.approx(2.0)
    assert m["max_drawdown_duration_bars"].value == 2
    assert m["cagr"].value == pytest.approx(1.188 ** (365 / 4) - 1)
    assert m["calmar"].value == pytest.approx((1.188 ** (365 / 4) - 1) / 0.1)
    # daily drawdowns 0, 0, -10 %, 0, 0 -> sqrt(100 / 5)
    assert m["ulcer_index"].value == pytest.approx(math.sqrt(20.0))
    assert m["days"].value == 4


def test_golden_trade_metrics() -> None:
    trades = [_trade(p, p / 100, days=d) for p, d in ((10, 1), (20, 2), (-5, 1), (-5, 3), (-5, 1), (0, 2), (3, 4))]
    m = trade_metrics(trades)
    pnl = np.array([10, 20, -5, -5, -5, 0, 3], dtype=float)
    assert m["trades"].value == 7
    assert m["win_rate"].value == pytest.approx(3 / 7)
    assert m["avg_win"].value == pytest.approx(11.0)
    assert m["avg_loss"].value == pytest.approx(-5.0)
    assert m["profit_factor"].value == pytest.approx(33 / 15)
    assert m["expectancy"].value == pytest.approx(18 / 7)
    assert m["expectancy_return"].value == pytest.approx(18 / 700)
    assert m["sqn"].value == pytest.approx(math.sqrt(7) * pnl.mean() / pnl.std(ddof=1))
    assert m["best_trade"].value == pytest.approx(0.2)
    assert m["worst_trade"].value == pytest.approx(-0.05)
    assert m["avg_holding_days"].value == pytest.approx(2.0)
    assert m["max_win_streak"].value == 2
    assert m["max_loss_streak"].value == 3


def test_golden_var_and_alpha_beta() -> None:
    n = 40
    ts = T0 + np.arange(n, dtype=np.int64) * DAY_MS
    b = np.where(np.arange(n) % 2 == 0, 0.02, -0.01)  # benchmark daily returns
    r = 0.001 + 1.5 * b  # strategy: beta 1.5, 0.1 % a day on top
    equity = 100.0 * np.cumprod(1 + r)
    bench = 100.0 * np.cumprod(1 + b)
    m = performance_metrics(ts, equity, 100.0, benchmark=bench)
    assert m["beta"].value == pytest.approx(1.5)
    assert m["alpha"].value == pytest.approx(1.001**365 - 1)
    # 20 returns of 0.031 and 20 of -0.014: the 5 % quantile and the mean of the worst int(39 * 0.05) + 1 = 2
    assert m["var"].value == pytest.approx(-0.014)
    assert m["cvar"].value == pytest.approx(-0.014)


def test_daily_resampling_takes_the_last_bar_of_each_utc_day() -> None:
    hours = T0 + np.arange(48, dtype=np.int64) * 3_600_000
    eq = np.arange(48, dtype=float) + 1000.0
    days, values = daily_equity(hours, eq, 999.0)
    np.testing.assert_array_equal(days, [T0 - DAY_MS, T0, T0 + DAY_MS])
    np.testing.assert_array_equal(values, [999.0, 1023.0, 1047.0])
    np.testing.assert_allclose(simple_returns(values), [1023 / 999 - 1, 1047 / 1023 - 1])


# --- undefined values are null with a reason -------------------------------------------------------------------


def test_too_little_data_gives_null_with_reason() -> None:
    ts = T0 + np.arange(3, dtype=np.int64) * DAY_MS
    m = performance_metrics(ts, np.array([101.0, 102.0, 103.0]), 100.0)
    for key in ("cagr", "volatility", "sharpe", "sortino", "calmar", "var", "cvar"):
        assert m[key].value is None, key
        assert m[key].reason and "needs at least" in m[key].reason
    assert m["total_return"].value == pytest.approx(0.03)
    assert m["max_drawdown"].value == 0.0
    for key in ("win_rate", "profit_factor", "sqn"):
        assert m[key].value is None and m[key].reason == "no closed trades"


def test_zero_denominators_give_null_not_infinity() -> None:
    ts = T0 + np.arange(60, dtype=np.int64) * DAY_MS
    flat = performance_metrics(ts, np.full(60, 100.0), 100.0, benchmark=np.full(60, 100.0))
    assert flat["sharpe"].value is None and flat["sharpe"].reason == "returns have no variance"
    assert flat["sortino"].value is None
    assert flat["calmar"].value is None and flat["calmar"].reason == "no drawdown"
    assert flat["beta"].value is None and flat["beta"].reason == "the benchmark has no variance"
    rising = performance_metrics(ts, 100.0 * 1.01 ** np.arange(1, 61), 100.0)
    assert rising["sortino"].value is None and rising["sortino"].reason == "no daily return below the target"
    winners = trade_metrics([_trade(5, 0.05), _trade(5, 0.05)])
    assert winners["profit_factor"].value is None and winners["profit_factor"].reason == "no losing trades"
    assert winners["sqn"].value is None
    wiped = performance_metrics(ts, np.concatenate((np.full(30, 50.0), np.full(30, -5.0))), 100.0)
    assert wiped["cagr"].value is None and wiped["cagr"].reason == "equity fell to zero or below"
    for metrics in (flat, rising, wiped):
        for metric in metrics.values():
            assert metric.value is None or math.isfinite(metric.value)
            assert (metric.value is None) == (metric.reason is not None)
    json.dumps(metrics_to_dict(wiped), allow_nan=False)


def test_drawdown_duration_counts_unrecovered_drawdowns() -> None:
    ts = T0 + np.arange(6, dtype=np.int64) * DAY_MS
    eq = np.array([100.0, 120.0, 90.0, 125.0, 110.0, 100.0])
    stats = drawdown_stats(ts, eq)
    assert stats.max_drawdown == pytest.approx(90 / 120 - 1)
    assert (stats.peak_index, stats.trough_index) == (1, 2)
    assert stats.longest_days == 2.0  # from the 125 peak to the end, never recovered (longer than 1 -> 3)
    assert stats.longest_bars == 2


def test_downsample_keeps_extremes() -> None:
    ts = np.arange(10_000, dtype=np.int64)
    y = np.sin(np.arange(10_000) / 300.0)
    y[4321] = -5.0
    t2, y2 = downsample(ts, y, 300)
    assert len(y2) <= 301
    assert -5.0 in y2 and t2[-1] == ts[-1] and t2[0] == 0


# --- cross-check against empyrical-reloaded ------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["BTC-USD_1d", "BTC-USD_1h"])
def test_matches_empyrical(dataset: str) -> None:
    candles = load_bundled(dataset)
    if dataset.endswith("1h"):
        candles = candles.slice(0, 12_000)
    result = backtest(
        candles,
        create_strategy("ema_crossover", {"fast": 12, "slow": 26, "short": True}),
        BacktestConfig.model_validate({"allow_short": True, "stops": {"trailing_stop": 0.1}}),
    )
    m = compute_metrics(result)
    # Independent daily resampling with pandas.
    idx = pd.to_datetime(result.ts, unit="ms", utc=True)
    daily = pd.Series(result.equity, index=idx).groupby(idx.floor("D")).last()
    returns = (
        pd.concat([pd.Series([result.initial_cash]), daily.reset_index(drop=True)]).pct_change().dropna().to_numpy()
    )
    bench = pd.Series(result.benchmark, index=idx).groupby(idx.floor("D")).last()
    bench_r = (
        pd.concat([pd.Series([result.initial_cash]), bench.reset_index(drop=True)]).pct_change().dropna().to_numpy()
    )
    ann = 365
    assert m["days"].value == len(returns)
    checks = {
        "total_return": empyrical.cum_returns_final(returns),
        "cagr": empyrical.annual_return(returns, annualization=ann),
        "volatility": empyrical.annual_volatility(returns, annualization=ann),
        "sharpe": empyrical.sharpe_ratio(returns, annualization=ann),
        "sortino": empyrical.sortino_ratio(returns, annualization=ann),
        "var": empyrical.value_at_risk(returns, cutoff=0.05),
        "cvar": empyrical.conditional_value_at_risk(returns, cutoff=0.05),
    }
    alpha, beta = empyrical.alpha_beta(returns, bench_r, annualization=ann)
    checks["alpha"] = alpha
    checks["beta"] = beta
    if dataset.endswith("1d"):
        # Daily bars: the bar equity is the daily equity, so drawdown-based metrics coincide too.
        checks["max_drawdown"] = empyrical.max_drawdown(returns)
        checks["calmar"] = empyrical.calmar_ratio(returns, annualization=ann)
    for key, expected in checks.items():
        assert m[key].value == pytest.approx(float(expected), rel=1e-9, abs=1e-12), key


def test_metrics_of_a_result_are_json_and_complete() -> None:
    r = backtest(load_bundled("ETH-USD_1d"), create_strategy("sma_crossover"), BacktestConfig())
    m = compute_metrics(r)
    required = {
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "max_drawdown_duration_days",
        "ulcer_index",
        "exposure_time",
        "trades",
        "win_rate",
        "avg_win",
        "avg_loss",
        "profit_factor",
        "expectancy",
        "sqn",
        "best_trade",
        "worst_trade",
        "avg_holding_days",
        "max_win_streak",
        "max_loss_streak",
        "var",
        "cvar",
        "alpha",
        "beta",
        "fees_paid",
        "benchmark_return",
    }
    assert required <= set(m)
    assert all(isinstance(v, Metric) for v in m.values())
    assert m["fees_paid"].value == pytest.approx(r.fees_paid)
    exposure = m["exposure_time"].value
    assert exposure is not None and 0.0 < exposure < 1.0
    json.dumps(metrics_to_dict(m), allow_nan=False)
