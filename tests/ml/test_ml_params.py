"""Parameter models refuse bad values (422 material) and the registry lists every algorithm honestly."""

from __future__ import annotations

import importlib.util
import json

import pytest
from pydantic import ValidationError

from aaiti.core.errors import Invalid, Unavailable
from aaiti.ml import ALGORITHMS, SEED_ALIASES, create, list_algorithms, resolve, validate_params
from aaiti.ml.estimators.params import ArimaParams, RandomForestParams, RecurrentParams
from aaiti.ml.training import check_spec

SEED_IDS = [
    "linear_regression",
    "polynomial_regression",
    "random_forest",
    "svm",
    "naive_bayes",
    "lstm",
    "arima",
    "sarima",
    "sarimax",
    "prophet",
    "ensemble_gradient_boost",
    "deep_neural_network",
    "reinforcement_learning",
    "moving_average",
]


def test_arima_d_above_3_rejected() -> None:
    with pytest.raises(ValidationError):
        ArimaParams(d=4)
    with pytest.raises(Invalid) as err:
        validate_params("arima", {"p": 1, "d": 4, "q": 1})
    assert err.value.status == 422
    assert err.value.extra["errors"][0]["loc"] == ["d"]


def test_huge_forest_rejected() -> None:
    with pytest.raises(ValidationError):
        RandomForestParams(n_estimators=10**9)
    with pytest.raises(Invalid):
        validate_params("ensemble_gradient_boost", {"max_iter": 10**9})


def test_sequence_longer_than_data_rejected() -> None:
    RecurrentParams.model_validate({"sequence_length": 64}, context={"n_rows": 500, "horizon": 1})
    with pytest.raises(ValidationError, match="sequence"):
        RecurrentParams.model_validate({"sequence_length": 400}, context={"n_rows": 300, "horizon": 1})
    with pytest.raises(Invalid, match="sequence"):
        check_spec(
            {
                "algorithm": "lstm",
                "params": {"sequence_length": 512},
                "dataset": "BTC-USD_1d",
                "end_ts": 1420070400000 + 200 * 86_400_000,
            }
        )


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [
        ("arima", {"p": 1, "bogus": 2}),
        ("sarima", {"season_length": 1}),
        ("sarimax", {"P": 1}),
        ("holt_winters", {"trend": False, "damped_trend": True}),
        ("lstm", {"epochs": 0}),
        ("dense_nn", {"hidden_layers": [2048]}),
        ("knn", {"n_neighbors": 0}),
        ("svr", {"C": -1}),
        ("q_learning", {"bins": 10, "state_features": ["a", "b", "c", "d", "e"]}),
        ("arima", {"auto": True, "engine": "statsmodels"}),
    ],
)
def test_bad_params_rejected(algorithm: str, params: dict[str, object]) -> None:
    with pytest.raises(Invalid):
        validate_params(algorithm, params)


def test_svr_row_cap_and_unknown_algorithm() -> None:
    with pytest.raises(Invalid, match="SVR"):
        validate_params("svr", {}, n_rows=50_000)
    with pytest.raises(Invalid, match="unknown algorithm"):
        resolve("magic_oracle")
    with pytest.raises(Invalid, match="unknown dataset"):
        check_spec({"algorithm": "naive", "dataset": "NOPE-USD_1d"})
    with pytest.raises(Invalid, match="exactly one"):
        check_spec({"algorithm": "naive"})


def test_seed_ids_map_to_real_algorithms() -> None:
    assert sorted(SEED_ALIASES) == sorted(SEED_IDS)
    for seed_id in SEED_IDS:
        info = resolve(seed_id)
        assert info.id in ALGORITHMS
    assert resolve("svm").id == "svr"
    assert resolve("deep_neural_network").id == "dense_nn"
    assert resolve("ensemble_gradient_boost").id == "hist_gradient_boosting"
    assert resolve("reinforcement_learning").id == "q_learning"
    assert resolve("naive_bayes").id == "gaussian_nb"


def test_list_algorithms_is_json_schema_ready() -> None:
    listed = list_algorithms()
    json.dumps(listed)
    ids = {a["id"] for a in listed}
    assert ids == set(ALGORITHMS)
    expected = {
        "naive",
        "drift",
        "seasonal_naive",
        "moving_average",
        "holt_winters",
        "arima",
        "sarima",
        "sarimax",
        "lstm",
        "gru",
        "dense_nn",
        "linear",
        "polynomial_ridge",
        "random_forest",
        "hist_gradient_boosting",
        "svr",
        "knn",
        "logistic_regression",
        "gaussian_nb",
        "q_learning",
        "prophet",
    }
    assert ids == expected
    for a in listed:
        assert a["params_schema"]["type"] == "object"
        assert a["params_schema"].get("additionalProperties") is False
        assert a["available"] is (a["reason"] is None)
    arima = next(a for a in listed if a["id"] == "arima")
    assert arima["params_schema"]["properties"]["d"]["maximum"] == 3
    assert "description" in arima["params_schema"]["properties"]["p"]


def test_prophet_listed_honestly() -> None:
    prophet = next(a for a in list_algorithms() if a["id"] == "prophet")
    installed = importlib.util.find_spec("prophet") is not None
    assert prophet["available"] is installed
    if not installed:
        assert "not installed" in prophet["reason"]
        with pytest.raises(Unavailable, match="prophet"):
            create("prophet", {}, horizon=1, level=0.9)
