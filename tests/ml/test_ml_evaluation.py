"""Scoring: metric formulas on hand-built numbers, and the protocol never scores in-sample."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import pytest

from aaiti.data import load_bundled
from aaiti.ml.estimators.base import (
    ArtifactPayload,
    FitContext,
    Forecast,
    IntArray,
    OriginForecasts,
    TrainingData,
)
from aaiti.ml.evaluation import (
    EvaluationConfig,
    _Metrics,
    direction_metrics,
    evaluate,
    interval_metrics,
    policy_metrics,
    scoring_origins,
    value_metrics,
)
from aaiti.ml.features import FeatureConfig, build_training_data


def test_value_metrics_by_hand() -> None:
    actual = np.array([100.0, 110.0, 90.0, 100.0])
    pred = np.array([102.0, 108.0, 93.0, 99.0])
    naive = np.array([98.0, 100.0, 110.0, 90.0])
    m = value_metrics(actual, pred, naive=naive, mase_scale=np.full(4, 4.0), target="price")
    v = m.values
    assert v["mae"] == pytest.approx(2.0)
    assert v["rmse"] == pytest.approx(math.sqrt((4 + 4 + 9 + 1) / 4))
    assert v["mape"] == pytest.approx(100 * (0.02 + 2 / 110 + 3 / 90 + 0.01) / 4)
    assert v["r2"] == pytest.approx(1 - 18 / 200)
    assert v["mase"] == pytest.approx(0.5)
    rmse = math.sqrt((4 + 4 + 9 + 1) / 4)
    naive_rmse = math.sqrt((4 + 100 + 400 + 100) / 4)
    assert v["theil_u"] == pytest.approx(rmse / naive_rmse)
    assert v["rmse_skill"] == pytest.approx(1 - rmse / naive_rmse)


def test_undefined_metrics_are_null_with_reason() -> None:
    actual = np.zeros(3)
    m = value_metrics(actual, np.ones(3), naive=actual, mase_scale=np.zeros(3), target="log_return")
    assert m.values["mape"] is None
    assert "log-return" in m.reasons["mape"]
    assert m.values["r2"] is None
    assert "do not vary" in m.reasons["r2"]
    assert m.values["mase"] is None
    assert m.values["theil_u"] is None
    d = _Metrics()
    direction_metrics(d, np.array([0.1, -0.2]), np.zeros(2), "the naive forecast")
    assert d.values["directional_accuracy"] is None
    assert "no directional call" in d.reasons["directional_accuracy"]


def test_direction_and_interval_metrics_by_hand() -> None:
    actual = np.array([0.1, -0.1, 0.2, -0.3, 0.05, 0.0])
    pred = np.array([0.2, 0.1, -0.1, -0.1, 0.3, 0.2])
    m = _Metrics()
    direction_metrics(m, actual, pred, "the model")
    # Non-zero pairs: (+,+) TP, (-,+) FP, (+,-) FN, (-,-) TN, (+,+) TP; the zero actual is skipped.
    assert m.values["directional_accuracy"] == pytest.approx(3 / 5)
    assert m.values["precision_up"] == pytest.approx(2 / 3)
    assert m.values["recall_up"] == pytest.approx(2 / 3)
    assert m.values["f1_up"] == pytest.approx(2 / 3)
    interval_metrics(m, actual, actual - 0.1, np.where(actual > 0, actual - 0.05, actual + 0.1))
    assert m.values["coverage"] == pytest.approx(3 / 6)


def test_policy_metrics_by_hand() -> None:
    pos = np.array([1.0, 1.0, 0.0, 1.0])
    ret = np.array([0.10, -0.05, 0.20, 0.10])
    m = policy_metrics(pos, ret, fee_bps=100, bars_per_year=365)
    strat = np.array([0.10 - 0.01, -0.05, -0.01, 0.10 - 0.01])
    assert m.values["total_return"] == pytest.approx(np.prod(1 + strat) - 1)
    assert m.values["buy_hold_return"] == pytest.approx(np.prod(1 + ret) - 1)
    assert m.values["exposure"] == pytest.approx(0.75)
    assert m.values["trades"] == 3
    assert m.values["hit_rate"] == pytest.approx(2 / 3)
    assert m.values["sharpe"] == pytest.approx(strat.mean() / strat.std(ddof=1) * math.sqrt(365))
    flat = policy_metrics(np.zeros(4), ret, fee_bps=10, bars_per_year=365)
    assert flat.values["sharpe"] is None
    assert flat.values["hit_rate"] is None


class SpyForecaster:
    """Records what it was fitted on and checks every forecast uses data up to its origin only."""

    kind: ClassVar[Any] = "value"
    algorithm: ClassVar[str] = "spy"
    fitted_lengths: ClassVar[list[int]] = []

    def __init__(self, horizon: int) -> None:
        self._horizon = horizon
        self.n_train = 0

    @property
    def horizon(self) -> int:
        return self._horizon

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        self.n_train = len(train)
        SpyForecaster.fitted_lengths.append(len(train))
        return self

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        raise NotImplementedError

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        assert origins.min() >= self.n_train - 1, "scored an origin inside the training window"
        # Forecast from truncated data and check it equals the forecast from full data: nothing past t used.
        mean = np.array([data.head(int(t) + 1).log_close[-1] - data.log_close[t] for t in origins])
        return OriginForecasts("value", origins, self._horizon, 0.9, mean=mean, lower=mean - 1, upper=mean + 1)

    def save(self) -> ArtifactPayload:
        raise NotImplementedError

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        raise NotImplementedError


@pytest.mark.parametrize("method", ["holdout", "walk_forward"])
def test_protocol_is_out_of_sample(method: str) -> None:
    data = build_training_data(load_bundled("BTC-USD_1d").slice(0, 300), FeatureConfig(), horizon=3)
    config = EvaluationConfig(method=method, test_fraction=0.25, folds=3)
    SpyForecaster.fitted_lengths.clear()
    result = evaluate(lambda: SpyForecaster(3), data, config, target="price", level=0.9)
    origins = scoring_origins(len(data), 3, data.first_valid, config)
    assert origins[-1] + 3 == len(data) - 1
    assert len(SpyForecaster.fitted_lengths) == (1 if method == "holdout" else 3)
    for fold in result.folds:
        assert fold.train_stop == fold.origins[0] + 1
        assert fold.model.n_train == fold.train_stop  # type: ignore[attr-defined]
    # A model that forecasts "no change" scores exactly like the naive baseline.
    assert result.metrics["model"]["rmse"] == pytest.approx(result.metrics["naive"]["rmse"])
    assert result.metrics["model"]["theil_u"] == pytest.approx(1.0)
    assert result.metrics["n_test"] == len(origins)
    if method == "walk_forward":
        assert [f["n_test"] for f in result.metrics["folds"]] == [len(b) for b in np.array_split(origins, 3)]
