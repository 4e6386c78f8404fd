"""Engine tests: the event loop and the vectorised path agree bit for bit on real data for every built-in
strategy (with fees, slippage, stops, shorts, leverage and every sizing rule), multi-symbol accounting, state
persistence, and the accounting invariants."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aaiti.data import load_bundled
from aaiti.trading.candles import Candles, align
from aaiti.trading.engine import (
    BacktestConfig,
    Bar,
    EventEngine,
    backtest,
    bar_ms_of,
    clean_targets,
    run_vectorized,
)
from aaiti.trading.fills import SIGNAL
from aaiti.trading.portfolio import ENTRY
from aaiti.trading.strategies import STRATEGIES, create_strategy

from .helpers import DAY, FixedTargets, assert_same_result, make_candles, run_both

BTC = load_bundled("BTC-USD_1d")

STRATEGY_PARAMS: dict[str, dict[str, Any]] = {
    "buy_and_hold": {},
    "sma_crossover": {"fast": 10, "slow": 30, "short": True},
    "ema_crossover": {"fast": 12, "slow": 26, "short": True},
    "rsi_mean_reversion": {"short": True},
    "macd_momentum": {"short": True},
    "bollinger_mean_reversion": {"short": True},
    "bollinger_breakout": {"short": True},
    "donchian_breakout": {"short": True},
    "rules": {
        "entry_long": {
            "all": [
                {
                    "left": {"indicator": "ema", "params": {"period": 10}},
                    "op": "crosses_above",
                    "right": {"indicator": "sma", "params": {"period": 30}},
                },
                {"left": {"indicator": "rsi"}, "op": "<", "right": 75},
            ]
        },
        "exit_long": {"left": {"price": "close"}, "op": "<", "right": {"indicator": "bbands", "output": "middle"}},
        "entry_short": {"left": {"indicator": "stoch", "output": "k"}, "op": "crosses_below", "right": 80},
        "exit_short": {
            "any": [
                {"left": {"indicator": "cci"}, "op": "<", "right": -100},
                {"not": {"left": {"indicator": "macd", "output": "hist"}, "op": "<", "right": 0}},
            ]
        },
    },
}

CONFIGS: dict[str, dict[str, Any]] = {
    "fees": {"fees": {"taker_bps": 10}},
    "full_rules_long": {
        "fees": {"maker_bps": 2, "taker_bps": 10},
        "slippage": {"bps": 5, "atr_fraction": 0.1},
        "stops": {"stop_loss": 0.05, "take_profit": 0.2, "trailing_stop": 0.1},
    },
    "full_rules_short": {
        "allow_short": True,
        "fees": {"maker_bps": 2, "taker_bps": 10},
        "slippage": {"bps": 5, "atr_fraction": 0.1},
        "stops": {"stop_loss": 0.08, "take_profit": 0.3, "trailing_stop": 0.15},
    },
    "leverage_liquidation": {
        "allow_short": True,
        "max_leverage": 3,
        "sizing": {"kind": "fixed_fraction", "fraction": 2.5},
        "stops": {"take_profit": 0.5},
    },
    "volatility_target": {"sizing": {"kind": "volatility_target", "target_vol": 0.4}, "stops": {"trailing_stop": 0.1}},
    "kelly": {"sizing": {"kind": "kelly", "min_trades": 5}, "stops": {"stop_loss": 0.03}, "allow_short": True},
    "notional_close_at_end": {"sizing": {"kind": "fixed_notional", "notional": 4000}, "close_at_end": True},
}


def _candles_for(name: str) -> Candles:
    # The rule strategy re-evaluates its rules on the whole history at every bar: keep its slice short.
    return BTC.slice(0, 420) if name == "rules" else BTC


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("strategy_name", list(STRATEGY_PARAMS))
def test_event_and_vectorized_engines_agree(strategy_name: str, config_name: str) -> None:
    strategy = create_strategy(strategy_name, STRATEGY_PARAMS[strategy_name])
    config = BacktestConfig.model_validate(CONFIGS[config_name])
    candles = _candles_for(strategy_name)
    vec = backtest(candles, strategy, config, engine="vectorized")
    ev = backtest(candles, strategy, config, engine="event")
    assert_same_result(vec, ev)
    assert vec.engine == "vectorized" and ev.engine == "event"


def test_every_registered_strategy_is_covered_by_parity() -> None:
    assert set(STRATEGIES) == set(STRATEGY_PARAMS)


def test_parity_exercises_every_exit_reason() -> None:
    seen: set[str] = set()
    for sname in STRATEGY_PARAMS:
        for cname in CONFIGS:
            r = backtest(
                _candles_for(sname),
                create_strategy(sname, STRATEGY_PARAMS[sname]),
                BacktestConfig.model_validate(CONFIGS[cname]),
            )
            seen |= {t.exit_reason for t in r.trades}
    assert {"signal", "stop_loss", "trailing_stop", "take_profit", "liquidation", "end_of_data"} <= seen


def test_parity_on_hourly_data_with_full_rules() -> None:
    candles = load_bundled("BTC-USD_1h").slice(0, 6000)
    config = BacktestConfig.model_validate(CONFIGS["full_rules_short"])
    for name in ("sma_crossover", "donchian_breakout", "bollinger_mean_reversion"):
        s = create_strategy(name, STRATEGY_PARAMS[name])
        assert_same_result(
            backtest(candles, s, config, engine="vectorized"), backtest(candles, s, config, engine="event")
        )


@pytest.mark.parametrize(
    "config_name", ["fees", "full_rules_short", "leverage_liquidation", "volatility_target", "kelly"]
)
def test_multi_symbol_shared_cash_parity(config_name: str) -> None:
    data = align({s: load_bundled(f"{s}-USD_1d") for s in ("BTC", "ETH", "LTC")})
    strategies = {
        "BTC": create_strategy("sma_crossover", {"fast": 5, "slow": 20, "short": True}),
        "ETH": create_strategy("bollinger_breakout", {"short": True}),
        "LTC": create_strategy("rsi_mean_reversion", {"short": True}),
    }
    config = BacktestConfig.model_validate({**CONFIGS[config_name], "weights": {"BTC": 0.5, "ETH": 0.3, "LTC": 0.4}})
    result = run_both(data, strategies, config)
    assert {t.symbol for t in result.trades} == {"BTC", "ETH", "LTC"}
    assert result.positions.shape == (3, len(data["BTC"]))


def test_align_keeps_common_timestamps_only() -> None:
    data = align({s: load_bundled(f"{s}-USD_1d") for s in ("BTC", "ETH")})
    assert np.array_equal(data["BTC"].ts, data["ETH"].ts)
    assert len(data["BTC"]) <= len(load_bundled("ETH-USD_1d"))
    assert np.all(np.isin(data["ETH"].ts, load_bundled("BTC-USD_1d").ts))


def test_fills_happen_at_the_open_after_the_decision() -> None:
    strategy = create_strategy("ema_crossover", {"fast": 5, "slow": 20, "short": True})
    config = BacktestConfig.model_validate(
        {"allow_short": True, "slippage": {"bps": 5}, "stops": {"stop_loss": 0.05, "take_profit": 0.2}}
    )
    targets = clean_targets(strategy.targets(BTC), True)
    r = backtest(BTC, strategy, config)
    f = r.fill_log.columns()
    signal_fills = 0
    for bar, reason, price, side in zip(f["bar"], f["reason"], f["price"], f["side"], strict=True):
        if reason in (ENTRY, SIGNAL):
            signal_fills += 1
            # decided on the previous bar's close (the target changed there), filled at this bar's open
            assert targets[bar - 1] != (targets[bar - 2] if bar >= 2 else 0.0)
            assert price == BTC.open[bar] * (1.0 + 5e-4) if side > 0 else price == BTC.open[bar] * (1.0 - 5e-4)
        else:
            # protective exits happen within the bar's range (or at a gapped open)
            assert BTC.low[bar] * (1 - 5e-4) <= price <= BTC.high[bar] * (1 + 5e-4)
    assert signal_fills > 50


def test_spot_cash_never_negative_and_pnl_adds_up() -> None:
    for name, params in STRATEGY_PARAMS.items():
        if name == "rules":
            continue
        config = BacktestConfig.model_validate(CONFIGS["full_rules_long"])
        r = backtest(BTC, create_strategy(name, params), config)
        cash = r.equity - (r.positions * BTC.close).sum(axis=0)
        assert cash.min() >= 0.0
        unrealised = sum(p["unrealized_pnl"] for p in r.open_positions)
        assert sum(t.pnl for t in r.trades) + unrealised == pytest.approx(r.final_equity - r.initial_cash, rel=1e-9)
        assert r.fees_paid == pytest.approx(float(np.sum(r.fill_log.column("fee"))), rel=1e-12)


def test_event_engine_state_survives_a_restart() -> None:
    strategy = create_strategy("macd_momentum", {"short": True})
    config = BacktestConfig.model_validate({**CONFIGS["full_rules_short"], "risk": {"max_daily_loss": 0.2}})
    bar_ms = bar_ms_of(BTC.ts)
    straight = EventEngine(["BTC"], strategy, config, bar_ms)
    straight.run([BTC])
    cut = 900
    first = EventEngine(["BTC"], strategy, config, bar_ms)
    first.run([BTC.slice(0, cut)])
    saved = json.dumps(first.get_state(), allow_nan=False)
    resumed = EventEngine(["BTC"], strategy, config, bar_ms)
    resumed.set_state(json.loads(saved))
    rest = BTC.slice(cut, len(BTC))
    for i in range(len(rest)):
        resumed.step(Bar(int(rest.ts[i]), rest.open[i], rest.high[i], rest.low[i], rest.close[i], rest.volume[i]))
    assert resumed.pf.trades == straight.pf.trades
    assert resumed.pf.fills == straight.pf.fills
    np.testing.assert_array_equal(np.asarray(resumed.equity), np.asarray(straight.equity[cut:]))


def test_step_accepts_a_mapping_of_bars_and_checks_timestamps() -> None:
    s = create_strategy("buy_and_hold")
    eng = EventEngine(["A", "B"], s, BacktestConfig(), DAY)
    eng.step({"A": Bar(0, 10, 11, 9, 10, 1), "B": Bar(0, 20, 21, 19, 20, 1)})
    eng.step({"A": Bar(DAY, 10, 11, 9, 10, 1), "B": Bar(DAY, 20, 21, 19, 20, 1)})
    assert len(eng.pf.fills) == 2
    # Equal weights: A gets half the equity; B is then cut to the cash left after A's purchase and fee.
    assert eng.pf.qty[0] == pytest.approx(500.0, rel=1e-12)
    assert eng.pf.qty[1] == pytest.approx(4995.0 / (20 * 1.001), rel=1e-9)
    with pytest.raises(ValueError, match="share a timestamp"):
        eng.step([Bar(2 * DAY, 10, 11, 9, 10, 1), Bar(3 * DAY, 20, 21, 19, 20, 1)])
    with pytest.raises(ValueError, match="one bar per symbol"):
        eng.step([Bar(2 * DAY, 10, 11, 9, 10, 1)])


def test_misaligned_symbols_are_refused() -> None:
    a = make_candles([(1, 1, 1, 1)] * 3)
    b = make_candles([(1, 1, 1, 1)] * 3, start=DAY * 10_000)
    with pytest.raises(ValueError, match="share timestamps"):
        backtest({"A": a, "B": b}, create_strategy("buy_and_hold"))


def test_vectorized_refuses_risk_halts_and_auto_picks_the_event_engine() -> None:
    config = BacktestConfig.model_validate({"risk": {"max_drawdown": 0.3}})
    s = create_strategy("sma_crossover")
    with pytest.raises(ValueError, match="event engine"):
        run_vectorized([BTC], [s.targets(BTC)], config, ["BTC"])
    assert backtest(BTC, s, config).engine == "event"


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        BacktestConfig.model_validate({"initial_cash": -1})
    with pytest.raises(ValidationError, match="Extra inputs"):
        BacktestConfig.model_validate({"unknown": 1})
    with pytest.raises(ValidationError, match="less than 1"):
        BacktestConfig.model_validate({"stops": {"stop_loss": 1.5}})
    with pytest.raises(ValidationError, match="martingale"):
        BacktestConfig.model_validate({"sizing": {"kind": "martingale"}})
    with pytest.raises(ValueError, match="weights"):
        backtest(BTC, create_strategy("buy_and_hold"), BacktestConfig.model_validate({"weights": {"other": 1.0}}))


def test_benchmark_is_frictionless_buy_and_hold() -> None:
    r = backtest(BTC, create_strategy("buy_and_hold"), BacktestConfig())
    np.testing.assert_allclose(r.benchmark, 10_000 * BTC.close / BTC.open[0], rtol=1e-12)


targets_strategy = st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.3, 1.0]), min_size=60, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=targets_strategy,
    start=st.integers(0, 1700),
    short=st.booleans(),
    lev=st.sampled_from([1.0, 2.0]),
    sl=st.sampled_from([None, 0.02, 0.08]),
    tp=st.sampled_from([None, 0.05, 0.3]),
    tr=st.sampled_from([None, 0.03, 0.1]),
    atr=st.sampled_from([0.0, 0.2]),
)
def test_random_targets_agree_and_account(
    targets: list[float],
    start: int,
    short: bool,
    lev: float,
    sl: float | None,
    tp: float | None,
    tr: float | None,
    atr: float,
) -> None:
    candles = BTC.slice(start, start + 60)
    config = BacktestConfig.model_validate(
        {
            "allow_short": short,
            "max_leverage": lev,
            "sizing": {"kind": "fixed_fraction", "fraction": lev},
            "fees": {"maker_bps": 1, "taker_bps": 7},
            "slippage": {"bps": 3, "atr_fraction": atr, "atr_period": 5},
            "stops": {"stop_loss": sl, "take_profit": tp, "trailing_stop": tr},
        }
    )
    r = run_both(candles, FixedTargets(targets), config)
    unrealised = sum(p["unrealized_pnl"] for p in r.open_positions)
    assert sum(t.pnl for t in r.trades) + unrealised == pytest.approx(
        r.final_equity - r.initial_cash, rel=1e-9, abs=1e-6
    )
    if not config.margin:
        cash = r.equity - (r.positions * candles.close).sum(axis=0)
        assert cash.min() >= 0.0
        assert np.all(r.positions >= 0.0)


@pytest.mark.parametrize("config_name", ["fees", "full_rules_long", "volatility_target", "notional_close_at_end"])
@pytest.mark.parametrize("strategy_name", ["sma_crossover", "bollinger_mean_reversion", "donchian_breakout"])
def test_specialised_vectorised_loops_equal_the_general_loop(strategy_name: str, config_name: str) -> None:
    """The round-trip and spot fast loops are specialisations of the general single-symbol loop."""
    from aaiti.trading.engine import _round_trips_apply, _Runtime, _SymbolPlan

    config = BacktestConfig.model_validate(CONFIGS[config_name])
    candles = load_bundled("BTC-USD_1h").slice(0, 5000)
    targets = create_strategy(strategy_name, STRATEGY_PARAMS[strategy_name]).targets(candles)
    general = run_vectorized([candles], [targets], config, ["X"], _force_general=True)
    fast = run_vectorized([candles], [targets], config, ["X"])
    assert_same_result(general, fast)
    if config_name in ("fees", "full_rules_long"):
        rt = _Runtime(config, ["X"], 3_600_000)
        assert _round_trips_apply(_SymbolPlan(candles, targets, rt), rt)


def test_spot_fast_loop_with_resizing_targets_equals_the_general_loop() -> None:
    candles = BTC.slice(0, 600)
    rng = np.random.default_rng(3)
    targets = rng.choice([0.0, 0.25, 0.5, 1.0], size=len(candles), p=[0.7, 0.1, 0.1, 0.1])
    for stops in ({}, {"stop_loss": 0.03, "trailing_stop": 0.05, "take_profit": 0.1}):
        config = BacktestConfig.model_validate({"stops": stops, "slippage": {"bps": 3}})
        general = run_vectorized([candles], [targets], config, ["X"], _force_general=True)
        fast = run_vectorized([candles], [targets], config, ["X"])
        assert_same_result(general, fast)
        assert_same_result(fast, backtest(candles, FixedTargets(targets.tolist()), config, engine="event"))


def test_bot_helpers_report_new_fills_trades_and_pending_orders() -> None:
    candles = make_candles([(100, 100, 100, 100), (100, 102, 99, 101), (101, 106, 100, 105), (110, 111, 109, 110)])
    eng = EventEngine(
        ["BTC"], FixedTargets([1, 1, 0, 0]), BacktestConfig.model_validate({"fees": {"taker_bps": 0}}), DAY
    )
    seen = 0
    for i in range(len(candles)):
        eng.step(Bar(int(candles.ts[i]), candles.open[i], candles.high[i], candles.low[i], candles.close[i], 1.0))
        if i == 0:
            assert eng.pending_orders == {"BTC": 1.0}
        new = eng.fills_since(seen)
        seen += len(new)
        if i == 1:
            assert [(f["symbol"], f["side"], f["reason"], f["price"]) for f in new] == [("BTC", 1, "entry", 100.0)]
        if i == 3:
            assert [(f["side"], f["reason"], f["price"]) for f in new] == [(-1, "signal", 110.0)]
    assert eng.trades_since(0)[0]["pnl"] == pytest.approx(1000.0, rel=1e-9)  # 100 units x 10
    assert eng.pending_orders == {}


@settings(max_examples=300, deadline=None)
@given(
    q0=st.sampled_from([0.0, 3.0, -3.0, 0.5]),
    target=st.sampled_from([0.0, 1.0, -1.0, 0.4, -0.7]),
    cash=st.floats(-500.0, 5000.0),
    open_=st.floats(10.0, 500.0),
    slip=st.sampled_from([0.0, 0.001]),
    sizing=st.sampled_from(
        [
            {"kind": "fixed_fraction", "fraction": 1.0},
            {"kind": "fixed_notional", "notional": 800.0},
            {"kind": "kelly", "min_trades": 1},
            {"kind": "volatility_target", "lookback": 5},
        ]
    ),
    margin=st.booleans(),
)
def test_execute_one_equals_execute_orders(
    q0: float, target: float, cash: float, open_: float, slip: float, sizing: dict[str, Any], margin: bool
) -> None:
    from aaiti.trading.engine import _Runtime, execute_one, execute_orders
    from aaiti.trading.portfolio import Portfolio

    config = BacktestConfig.model_validate(
        {"sizing": sizing, "allow_short": margin, "max_leverage": 2.0 if margin else 1.0, "stops": {"stop_loss": 0.1}}
    )
    rt = _Runtime(config, ["X"], DAY)
    states = []
    for use_one in (True, False):
        pf = Portfolio(1, cash, rt.fill_model, rt.margin, rt.track_kelly, rt.check_exits)
        if q0 != 0.0 and (margin or q0 > 0):
            pf.increase(0, 1 if q0 > 0 else -1, abs(q0), 100.0, rt.taker, 0, 0, 1000.0)
            pf.kelly.add(0.05)
        equity = pf.cash + pf.qty[0] * open_
        if use_one:
            execute_one(rt, pf, 0, target, SIGNAL, 1, DAY, open_, slip, 0.02, equity)
        else:
            execute_orders(rt, pf, 1, DAY, [open_], [slip], [0.02], [(0, target, SIGNAL)])
        states.append(json.dumps(pf.get_state(), sort_keys=True))
    assert states[0] == states[1]


def test_fill_model_helpers_reproduce_the_engine_fills() -> None:
    """The paper broker prices fills with FillModel.market_price / slippage_rate; they must give the engine's
    prices (volatility-scaled slippage included)."""
    from aaiti.trading import indicators as ind
    from aaiti.trading.fills import FillModel, slippage_rate

    config = BacktestConfig.model_validate({"slippage": {"bps": 4, "atr_fraction": 0.2, "atr_period": 10}})
    strategy = create_strategy("sma_crossover", {"fast": 5, "slow": 20})
    r = backtest(BTC, strategy, config)
    atr = ind.atr(BTC.high, BTC.low, BTC.close, 10)
    f = r.fill_log.columns()
    assert len(f["bar"]) > 20
    for bar, side, price in zip(f["bar"], f["side"], f["price"], strict=True):
        j = bar - 1
        slip = slippage_rate(4e-4, 0.2, float(atr[j]), BTC.high[j], BTC.low[j], BTC.close[j])
        assert price == FillModel.market_price(float(BTC.open[bar]), side, slip)
