"""Live accuracy: the outcome of one resolved prediction and the drift rule, on hand-built cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aaiti.ml.service import live_summary, outcome_of

EVALUATION = {"model": {"directional_accuracy": 0.6, "mae": 10.0, "coverage": 0.9}}


def _value_forecast(direction: str, target: str = "price") -> dict[str, Any]:
    return {"kind": "value", "target": target, "origin_close": 100.0, "direction": direction}


def test_outcome_of_a_price_forecast() -> None:
    actual, out = outcome_of(_value_forecast("up"), 103.0, 95.0, 110.0, 105.0)
    assert actual == 105.0
    assert out["hit"] is True and out["abs_error"] == pytest.approx(2.0) and out["covered"] is True
    assert out["actual_log_return"] == pytest.approx(math.log(1.05))
    actual, out = outcome_of(_value_forecast("up"), 103.0, 95.0, 110.0, 90.0)
    assert out["hit"] is False and out["covered"] is False
    _, out = outcome_of(_value_forecast("up"), 103.0, 95.0, 110.0, 100.0)
    assert out["hit"] is None, "no move: no directional call to score"
    _, out = outcome_of(_value_forecast("flat"), 100.0, 95.0, 110.0, 104.0)
    assert out["hit"] is None


def test_outcome_of_log_return_direction_and_position_forecasts() -> None:
    actual, out = outcome_of(_value_forecast("down", "log_return"), -0.01, -0.05, 0.03, 98.0)
    assert actual == pytest.approx(math.log(0.98)) and out["hit"] is True
    assert out["abs_error"] == pytest.approx(abs(-0.01 - math.log(0.98)))
    direction = {"kind": "direction", "target": "prob_up", "origin_close": 100.0}
    actual, out = outcome_of(direction, 0.7, None, None, 101.0)
    assert actual == 1.0 and out["hit"] is True and out["brier"] == pytest.approx(0.09)
    _, out = outcome_of(direction, 0.5, None, None, 101.0)
    assert out["hit"] is None
    position = {"kind": "position", "target": "position", "origin_close": 100.0}
    actual, out = outcome_of(position, -1.0, None, None, 99.0)
    assert actual == pytest.approx(math.log(0.99)) and out["hit"] is True
    _, out = outcome_of(position, 0.0, None, None, 99.0)
    assert out["hit"] is None, "flat: no call"


def _outcomes(hits: int, misses: int) -> list[dict[str, Any]]:
    return [{"hit": True, "abs_error": 1.0, "covered": True}] * hits + [
        {"hit": False, "abs_error": 3.0, "covered": False}
    ] * misses


def test_drift_flag_rule() -> None:
    # p = 0.6, n = 12: threshold = 0.6 - 2 * sqrt(0.24 / 12) = 0.3172
    low = live_summary(_outcomes(3, 9), 12, EVALUATION, version=1, horizon=1)
    assert low["threshold"] == pytest.approx(0.6 - 2 * math.sqrt(0.24 / 12))
    assert low["directional_accuracy"] == 0.25 and low["drift"] is True
    assert low["mae"] == pytest.approx(2.5) and low["coverage"] == 0.25
    ok = live_summary(_outcomes(4, 8), 12, EVALUATION, version=1, horizon=1)
    assert ok["drift"] is False and "not below" in ok["drift_reason"]
    few = live_summary(_outcomes(0, 9), 9, EVALUATION, version=1, horizon=1)
    assert few["drift"] is None and "needs 10" in few["drift_reason"]
    none = live_summary(_outcomes(0, 20), 20, {"model": {"directional_accuracy": None}}, version=1, horizon=1)
    assert none["drift"] is None and "no directional accuracy" in none["drift_reason"]
    # Only the newest `window` outcomes count (newest first); n_resolved is the all-time count.
    windowed = live_summary(_outcomes(0, 20) + _outcomes(30, 0), 50, EVALUATION, version=2, horizon=1, window=20)
    assert windowed["n_window"] == 20 and windowed["directional_accuracy"] == 0.0 and windowed["n_resolved"] == 50
    # Calls with no direction do not count towards n.
    mixed = live_summary([{"hit": None}] * 15 + _outcomes(5, 0), 20, EVALUATION, version=1, horizon=1)
    assert mixed["n_directional"] == 5 and mixed["drift"] is None
