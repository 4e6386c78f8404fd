"""Every registered algorithm trains on real bundled candles, is scored out of sample next to the naive
forecast, reproduces bit-for-bit with the same seed, and reloads from its verified artefact."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from aaiti.core.errors import Unavailable
from aaiti.data import load_bundled
from aaiti.ml import list_algorithms
from aaiti.ml.artifacts import ArtifactIntegrityError
from aaiti.ml.training import load_model, predict, train

SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "lstm": {"epochs": 3, "sequence_length": 12, "hidden_size": 8},
    "gru": {"epochs": 3, "sequence_length": 12, "hidden_size": 8},
    "dense_nn": {"epochs": 3, "hidden_layers": [16]},
    "random_forest": {"n_estimators": 15, "max_depth": 6},
    "hist_gradient_boosting": {"max_iter": 30},
    "q_learning": {"episodes": 3},
    "sarima": {"season_length": 7, "p": 1, "q": 0},
}
HOURLY_PARAMS: dict[str, dict[str, Any]] = {
    **SMALL_PARAMS,
    "sarima": {"season_length": 24, "p": 1, "q": 0, "P": 1, "Q": 0},
    "seasonal_naive": {"season_length": 24},
    "holt_winters": {"seasonal_periods": 24},
}
AVAILABLE = [a["id"] for a in list_algorithms() if a["available"]]
DAILY = load_bundled("BTC-USD_1d")
HOURLY = load_bundled("BTC-USD_1h")


def _noop(_f: float, _m: str) -> None:
    return None


def _never() -> bool:
    return False


def _check_metrics(result: dict[str, Any]) -> None:
    metrics = result["metrics"]
    reasons = metrics["null_reasons"]
    for who in ("model", "naive"):
        for name, value in metrics[who].items():
            if value is None:
                assert f"{who}.{name}" in reasons, f"{who}.{name} is null without a reason"
            else:
                assert math.isfinite(value), f"{who}.{name} = {value}"
    for name in ("mae", "rmse", "mase", "coverage"):
        assert metrics["naive"][name] is not None
    assert metrics["naive"]["theil_u"] == pytest.approx(1.0)
    if result["kind"] == "value":
        for name in ("mae", "rmse", "r2", "mase", "theil_u", "rmse_skill", "coverage"):
            assert metrics["model"][name] is not None, name
        if result["algorithm"] != "naive":  # the naive forecast calls no direction
            assert metrics["model"]["directional_accuracy"] is not None
    elif result["kind"] == "direction":
        assert metrics["model"]["brier"] is not None
    else:
        assert metrics["policy"]["total_return"] is not None
        assert metrics["policy"]["buy_hold_return"] is not None
    assert metrics["n_test"] >= 10


@pytest.mark.parametrize("algorithm", AVAILABLE)
def test_trains_scores_reproduces_and_reloads(algorithm: str) -> None:
    candles = DAILY.slice(0, 420)
    spec = {
        "algorithm": algorithm,
        "params": SMALL_PARAMS.get(algorithm, {}),
        "dataset": "BTC-USD_1d",
        "end_ts": int(candles.ts[-1]),
        "seed": 7,
    }
    first = train(spec, _noop, _never)
    _check_metrics(first)
    assert first["training_window"]["end_ts"] < first["test_window"]["first_origin_ts"] + 1
    assert first["data_window"]["n_bars"] == 420

    second = train(spec, _noop, _never)
    assert second["artifact"]["sha256"] == first["artifact"]["sha256"]
    assert second["forecast"] == first["forecast"]
    assert second["metrics"] == first["metrics"]

    art = first["artifact"]
    again = predict(art["bytes"], art["sha256"], candles)
    assert again["prediction_value"] == first["forecast"]["prediction_value"]
    assert again["steps"] == first["forecast"]["steps"]

    tampered = bytearray(art["bytes"])
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ArtifactIntegrityError):
        load_model(bytes(tampered), art["sha256"])


@pytest.mark.parametrize("algorithm", [a for a in AVAILABLE if a not in {"q_learning"}])
def test_hourly_log_return_walk_forward(algorithm: str) -> None:
    candles = HOURLY.slice(5000, 5000 + 600)
    payload = {
        "ts": candles.ts.tolist(),
        "open": candles.open.tolist(),
        "high": candles.high.tolist(),
        "low": candles.low.tolist(),
        "close": candles.close.tolist(),
        "volume": candles.volume.tolist(),
    }
    spec = {
        "algorithm": algorithm,
        "params": HOURLY_PARAMS.get(algorithm, {}),
        "candles": payload,
        "horizon": 2,
        "target": "log_return",
        "evaluation": {"method": "walk_forward", "folds": 2, "test_fraction": 0.2},
        "seed": 1,
    }
    result = train(spec, _noop, _never)
    _check_metrics(result)
    assert result["metrics"]["model"]["mape"] is None
    assert len(result["metrics"]["folds"]) == 2
    assert result["forecast"]["horizon"] == 2
    if result["kind"] == "value":
        steps = result["forecast"]["steps"]
        assert all(s["price_lower"] <= s["price"] <= s["price_upper"] for s in steps)
        assert steps[1]["ts"] == int(candles.ts[-1]) + 2 * 3_600_000


def test_prophet_available_or_refused_with_reason() -> None:
    if "prophet" in AVAILABLE:
        spec = {"algorithm": "prophet", "dataset": "BTC-USD_1d", "end_ts": int(DAILY.ts[399])}
        _check_metrics(train(spec, _noop, _never))
    else:
        with pytest.raises(Unavailable, match="not installed"):
            train({"algorithm": "prophet", "dataset": "BTC-USD_1d"}, _noop, _never)


def test_forecasts_differ_across_seeds_for_stochastic_models() -> None:
    spec = {
        "algorithm": "dense_nn",
        "params": SMALL_PARAMS["dense_nn"],
        "dataset": "BTC-USD_1d",
        "end_ts": int(DAILY.ts[399]),
    }
    a = train({**spec, "seed": 1}, _noop, _never)
    b = train({**spec, "seed": 2}, _noop, _never)
    assert not np.isclose(a["forecast"]["prediction_value"], b["forecast"]["prediction_value"], rtol=0, atol=0)
