"""Strategies: vectorised and incremental forms agree, parameters are validated, the state machine is right."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aaiti.data import load_bundled
from aaiti.trading.strategies import (
    STRATEGIES,
    ForecastThreshold,
    create_strategy,
    state_machine_step,
    state_machine_targets,
    strategy_catalog,
)
from aaiti.trading.strategies.base import Strategy

from .test_engine import STRATEGY_PARAMS

BTC = load_bundled("BTC-USD_1d")


def _stream_all(s: Strategy, n: int, start: int = 0, state: dict[str, Any] | None = None) -> np.ndarray:
    stream = s.stream()
    if state is not None:
        stream.set_state(state)
    c = BTC
    return np.array(
        [stream.update(int(c.ts[i]), c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i]) for i in range(start, n)]
    )


def _variants(name: str) -> list[dict[str, Any]]:
    params = STRATEGY_PARAMS[name]
    out = [params]
    if "short" in params:
        out.append({**params, "short": False})
    return out


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_stream_equals_targets(name: str) -> None:
    n = 420 if name == "rules" else len(BTC)
    for params in _variants(name):
        s = create_strategy(name, params)
        targets = s.targets(BTC.slice(0, n))
        np.testing.assert_array_equal(_stream_all(s, n), targets)
        assert set(np.unique(targets)) <= {-1.0, 0.0, 1.0}
        if not params.get("short", False) and name != "rules":
            assert targets.min() >= 0.0
        # Nothing is decided during warm-up.
        assert np.all(targets[: s.warmup()] == 0.0)
        assert np.any(targets != 0.0)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_stream_state_round_trip(name: str) -> None:
    n = 300 if name == "rules" else len(BTC)
    s = create_strategy(name, STRATEGY_PARAMS[name])
    expected = s.targets(BTC.slice(0, n))
    cut = n // 2
    stream = s.stream()
    c = BTC
    for i in range(cut):
        stream.update(int(c.ts[i]), c.open[i], c.high[i], c.low[i], c.close[i], c.volume[i])
    state = json.loads(json.dumps(stream.get_state(), allow_nan=False))
    np.testing.assert_array_equal(_stream_all(s, n, cut, state), expected[cut:])


def test_causal_targets() -> None:
    """A target at bar i never changes when later bars are appended."""
    for name in STRATEGIES:
        if name == "rules":
            continue
        s = create_strategy(name, STRATEGY_PARAMS[name])
        full = s.targets(BTC)
        for cut in (100, 777, 1500):
            np.testing.assert_array_equal(s.targets(BTC.slice(0, cut)), full[:cut])


def test_catalog_has_json_schemas() -> None:
    cat = strategy_catalog()
    assert {c["name"] for c in cat} == set(STRATEGIES)
    for entry in cat:
        schema = entry["params_schema"]
        json.dumps(schema)
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
    sma = next(c for c in cat if c["name"] == "sma_crossover")["params_schema"]
    assert sma["properties"]["fast"]["minimum"] == 1


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sma_crossover", {"fast": 30, "slow": 10}, "fast must be smaller"),
        ("sma_crossover", {"fast": 0}, "greater than or equal to 1"),
        ("sma_crossover", {"fast": 10, "slow": 30, "colour": "red"}, "Extra inputs"),
        ("ema_crossover", {"slow": 5000}, "less than or equal to 2000"),
        ("rsi_mean_reversion", {"lower": 60, "upper": 40}, "lower < exit_level < upper"),
        ("rsi_mean_reversion", {"exit_level": 80}, "lower < exit_level < upper"),
        ("bollinger_breakout", {"k": 0}, "greater than 0"),
        ("donchian_breakout", {"entry_period": 0}, "greater than or equal to 1"),
        ("macd_momentum", {"fast": 26, "slow": 12}, "fast must be smaller"),
        ("rules", {}, "at least one of entry_long or entry_short"),
        ("rules", {"entry_long": {"left": {"indicator": "nope"}, "op": ">", "right": 1}}, "unknown indicator"),
        (
            "rules",
            {"entry_long": {"left": {"indicator": "sma", "params": {"period": -1}}, "op": ">", "right": 1}},
            "greater than or equal to 1",
        ),
        (
            "rules",
            {"entry_long": {"left": {"indicator": "bbands", "output": "value"}, "op": ">", "right": 1}},
            "outputs",
        ),
        ("rules", {"entry_long": {"left": {"price": "close"}, "op": "==", "right": 1}}, "op"),
        ("rules", {"entry_long": {"left": True, "op": ">", "right": 1}}, "not booleans"),
        ("nonexistent", {}, "unknown strategy"),
    ],
)
def test_invalid_params_are_rejected(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_strategy(name, params)


def test_rules_limits() -> None:
    cond = {"left": {"price": "close"}, "op": ">", "right": 1}
    with pytest.raises(ValueError, match="at most"):
        create_strategy("rules", {"entry_long": {"any": [cond] * 33}})
    deep: dict[str, Any] = cond
    for _ in range(7):
        deep = {"not": deep}
    with pytest.raises(ValueError, match="nest"):
        create_strategy("rules", {"entry_long": deep})


def test_rules_crossover_equals_builtin_crossover() -> None:
    rules = create_strategy(
        "rules",
        {
            "entry_long": {
                "left": {"indicator": "sma", "params": {"period": 10}},
                "op": ">",
                "right": {"indicator": "sma", "params": {"period": 30}},
            },
            "exit_long": {
                "left": {"indicator": "sma", "params": {"period": 10}},
                "op": "<=",
                "right": {"indicator": "sma", "params": {"period": 30}},
            },
        },
    )
    builtin = create_strategy("sma_crossover", {"fast": 10, "slow": 30})
    np.testing.assert_array_equal(rules.targets(BTC), builtin.targets(BTC))
    assert rules.warmup() == builtin.warmup()


def test_rules_unknown_operands_never_fire_during_warm_up() -> None:
    s = create_strategy(
        "rules",
        {"entry_long": {"not": {"left": {"indicator": "rsi", "params": {"period": 50}}, "op": ">", "right": 99}}},
    )
    t = s.targets(BTC)
    assert np.all(t[:50] == 0.0)
    assert t[50] == 1.0


def test_rules_params_are_normalised() -> None:
    a = create_strategy("rules", {"entry_long": {"left": {"indicator": "sma"}, "op": ">", "right": 1}})
    b = create_strategy(
        "rules", {"entry_long": {"left": {"indicator": "sma", "params": {"period": 14}}, "op": ">", "right": 1.0}}
    )
    assert a.params.model_dump() == b.params.model_dump()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=80))
def test_state_machine_vectorised_equals_stepwise(events: list[tuple[bool, bool, bool, bool]]) -> None:
    arr = np.array(events, dtype=bool)
    vec = state_machine_targets(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    state = 0.0
    step = []
    for el, xl, es, xs in events:
        state = state_machine_step(state, el, xl, es, xs)
        step.append(state)
    np.testing.assert_array_equal(vec, np.array(step))
    long_only = state_machine_targets(arr[:, 0], arr[:, 1])
    state = 0.0
    for i, (el, xl, _, _) in enumerate(events):
        state = state_machine_step(state, el, xl, False, False)
        assert long_only[i] == state


def test_forecast_hook() -> None:
    s = ForecastThreshold({"long_above": 0.001, "short_below": -0.001})
    forecast = np.array([0.0, 0.002, -0.002, np.nan, 0.0005])
    c = BTC.slice(0, 5)
    np.testing.assert_array_equal(s.targets(c, forecast), [0.0, 1.0, -1.0, 0.0, 0.0])
    stream = s.stream()
    got = [stream.update(0, 1, 1, 1, 1, 1, None if np.isnan(f) else float(f)) for f in forecast]
    assert got == [0.0, 1.0, -1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="forecast"):
        s.targets(c)
    assert "forecast_threshold" not in STRATEGIES
