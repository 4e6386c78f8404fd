"""Algorithm registry: id -> class, params model, availability. Importing this module is cheap.

Classes are imported lazily (``module:attr``) so the API process can list and validate algorithms without
loading torch, statsmodels or scikit-learn. Availability is decided by whether the algorithm's libraries
can be imported here; an unavailable algorithm is still listed, with the reason.

The seed product's ids are accepted as aliases and resolve to the algorithm that really runs.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from aaiti.core.errors import Invalid, Unavailable
from aaiti.ml.estimators import params as P
from aaiti.ml.estimators.base import Forecaster

Family = Literal["baseline", "statistical", "neural", "machine_learning", "classifier", "reinforcement_learning"]


@dataclass(frozen=True, slots=True)
class AlgorithmInfo:
    id: str
    name: str
    family: Family
    kind: Literal["value", "direction", "position"]
    description: str
    params_model: type[BaseModel]
    target: str  # "module:Class"
    requires: tuple[str, ...]
    engine: str

    @property
    def availability(self) -> tuple[bool, str | None]:
        return _availability(self.requires)

    def load_class(self) -> type[Forecaster]:
        module, _, attr = self.target.partition(":")
        cls: type[Forecaster] = getattr(importlib.import_module(module), attr)
        return cls


@cache
def _availability(requires: tuple[str, ...]) -> tuple[bool, str | None]:
    missing = [m for m in requires if importlib.util.find_spec(m) is None]
    if not missing:
        return True, None
    if "prophet" in missing:
        return False, "prophet is not installed on this server (optional extra: pip install 'prophet>=1.1.6')"
    return False, f"required libraries are not installed: {', '.join(missing)} (install the 'ml' extra)"


_E = "aaiti.ml.estimators"
_SM = ("statsmodels", "statsforecast")
_SK = ("sklearn", "joblib")
_TORCH = ("torch", "safetensors")

_ALGORITHMS: tuple[AlgorithmInfo, ...] = (
    AlgorithmInfo(
        "naive",
        "Naive (last value)",
        "baseline",
        "value",
        "Random walk: the last close carried forward.",
        P.NaiveParams,
        f"{_E}.baselines:NaiveForecaster",
        ("scipy",),
        "numpy",
    ),
    AlgorithmInfo(
        "drift",
        "Drift",
        "baseline",
        "value",
        "Random walk with the training window's average log return as drift.",
        P.DriftParams,
        f"{_E}.baselines:DriftForecaster",
        ("scipy",),
        "numpy",
    ),
    AlgorithmInfo(
        "seasonal_naive",
        "Seasonal naive",
        "baseline",
        "value",
        "The close one season earlier.",
        P.SeasonalNaiveParams,
        f"{_E}.baselines:SeasonalNaiveForecaster",
        ("scipy",),
        "numpy",
    ),
    AlgorithmInfo(
        "moving_average",
        "Moving average",
        "baseline",
        "value",
        "Simple moving average of the last closes, held flat.",
        P.MovingAverageParams,
        f"{_E}.baselines:MovingAverageForecaster",
        ("scipy",),
        "numpy",
    ),
    AlgorithmInfo(
        "holt_winters",
        "Exponential smoothing (Holt-Winters)",
        "statistical",
        "value",
        "Additive level/trend/season exponential smoothing, fitted by maximum likelihood.",
        P.HoltWintersParams,
        f"{_E}.statespace:HoltWintersForecaster",
        _SM,
        "statsmodels",
    ),
    AlgorithmInfo(
        "arima",
        "ARIMA",
        "statistical",
        "value",
        "ARIMA(p,d,q) on the log close by maximum likelihood; orders by AIC when auto.",
        P.ArimaParams,
        f"{_E}.statespace:ArimaForecaster",
        _SM,
        "statsforecast/statsmodels",
    ),
    AlgorithmInfo(
        "sarima",
        "SARIMA",
        "statistical",
        "value",
        "Seasonal ARIMA(p,d,q)(P,D,Q)s on the log close by maximum likelihood.",
        P.SarimaParams,
        f"{_E}.statespace:SarimaForecaster",
        _SM,
        "statsforecast/statsmodels",
    ),
    AlgorithmInfo(
        "sarimax",
        "SARIMAX (indicator regressors)",
        "statistical",
        "value",
        "Regression on indicator features (lagged h bars) with (seasonal) ARIMA errors.",
        P.SarimaxParams,
        f"{_E}.statespace:SarimaxForecaster",
        _SM,
        "statsmodels/statsforecast",
    ),
    AlgorithmInfo(
        "lstm",
        "LSTM",
        "neural",
        "value",
        "Long short-term memory network over a sequence of feature rows (backpropagation through "
        "time), early stopping.",
        P.RecurrentParams,
        f"{_E}.neural:LstmForecaster",
        _TORCH,
        "torch",
    ),
    AlgorithmInfo(
        "gru",
        "GRU",
        "neural",
        "value",
        "Gated recurrent unit network over a sequence of feature rows, early stopping.",
        P.RecurrentParams,
        f"{_E}.neural:GruForecaster",
        _TORCH,
        "torch",
    ),
    AlgorithmInfo(
        "dense_nn",
        "Dense neural network",
        "neural",
        "value",
        "Multi-layer perceptron on the current feature row, early stopping.",
        P.DenseParams,
        f"{_E}.neural:DenseForecaster",
        _TORCH,
        "torch",
    ),
    AlgorithmInfo(
        "linear",
        "Linear regression",
        "machine_learning",
        "value",
        "Ordinary least squares on standardised features.",
        P.LinearParams,
        f"{_E}.tabular:LinearForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "polynomial_ridge",
        "Polynomial ridge regression",
        "machine_learning",
        "value",
        "Ridge regression on a polynomial expansion of the features.",
        P.PolynomialRidgeParams,
        f"{_E}.tabular:PolynomialRidgeForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "random_forest",
        "Random forest",
        "machine_learning",
        "value",
        "Bagged regression trees.",
        P.RandomForestParams,
        f"{_E}.tabular:RandomForestForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "hist_gradient_boosting",
        "Gradient boosting (histogram)",
        "machine_learning",
        "value",
        "Histogram-based gradient-boosted trees.",
        P.HistGradientBoostingParams,
        f"{_E}.tabular:HistGradientBoostingForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "svr",
        "Support vector regression",
        "machine_learning",
        "value",
        "Epsilon-insensitive support vector regression on standardised features and target.",
        P.SvrParams,
        f"{_E}.tabular:SvrForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "knn",
        "k-nearest neighbours",
        "machine_learning",
        "value",
        "Average of the targets of the most similar past feature rows.",
        P.KnnParams,
        f"{_E}.tabular:KnnForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "logistic_regression",
        "Logistic regression (direction)",
        "classifier",
        "direction",
        "Probability that the close rises over the horizon.",
        P.LogisticParams,
        f"{_E}.tabular:LogisticForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "gaussian_nb",
        "Gaussian naive Bayes (direction)",
        "classifier",
        "direction",
        "Probability that the close rises, from per-class Gaussian feature densities.",
        P.GaussianNbParams,
        f"{_E}.tabular:GaussianNbForecaster",
        _SK,
        "scikit-learn",
    ),
    AlgorithmInfo(
        "q_learning",
        "Q-learning trader",
        "reinforcement_learning",
        "position",
        "Tabular Q-learning over quantile-binned indicator states; outputs positions.",
        P.QLearningParams,
        f"{_E}.rl:QLearningTrader",
        ("safetensors",),
        "numpy",
    ),
    AlgorithmInfo(
        "prophet",
        "Prophet",
        "statistical",
        "value",
        "Prophet's additive trend + seasonality curve on the log close.",
        P.ProphetParams,
        f"{_E}.prophet:ProphetForecaster",
        ("prophet",),
        "prophet",
    ),
)

ALGORITHMS: dict[str, AlgorithmInfo] = {a.id: a for a in _ALGORITHMS}

# The seed product's ids, mapped to the algorithm that really runs under each.
SEED_ALIASES: dict[str, str] = {
    "linear_regression": "linear",
    "polynomial_regression": "polynomial_ridge",
    "random_forest": "random_forest",
    "svm": "svr",
    "naive_bayes": "gaussian_nb",
    "lstm": "lstm",
    "arima": "arima",
    "sarima": "sarima",
    "sarimax": "sarimax",
    "prophet": "prophet",
    "ensemble_gradient_boost": "hist_gradient_boosting",
    "deep_neural_network": "dense_nn",
    "reinforcement_learning": "q_learning",
    "moving_average": "moving_average",
}


def resolve(algorithm: str) -> AlgorithmInfo:
    """Look up an id or seed alias. Raises ``Invalid`` for an unknown id."""
    key = SEED_ALIASES.get(algorithm, algorithm)
    info = ALGORITHMS.get(key)
    if info is None:
        raise Invalid(f"unknown algorithm {algorithm!r}", extra={"known": sorted(ALGORITHMS)})
    return info


def validate_params(
    algorithm: str, params: dict[str, Any] | None, *, n_rows: int | None = None, horizon: int = 1
) -> BaseModel:
    """Validate ``params`` for ``algorithm``; with ``n_rows`` also the data-size constraints.

    Raises ``Invalid`` (HTTP 422) with pydantic's error list in ``extra["errors"]``.
    """
    info = resolve(algorithm)
    try:
        return info.params_model.model_validate(params or {}, context={"n_rows": n_rows, "horizon": horizon})
    except ValidationError as exc:
        errors = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc']) or 'params'}: {e['msg']}" for e in errors)
        raise Invalid(f"invalid parameters for {info.id}: {detail}", extra={"errors": errors}) from exc


def create(
    algorithm: str, params: BaseModel | dict[str, Any] | None, *, horizon: int, level: float, seed: int = 0
) -> Forecaster:
    """A fresh, unfitted forecaster. Raises ``Invalid`` or ``Unavailable`` (with the reason)."""
    info = resolve(algorithm)
    ok, reason = info.availability
    if not ok:
        raise Unavailable(f"{info.id} is unavailable: {reason}")
    model = (
        params
        if isinstance(params, info.params_model)
        else validate_params(info.id, params if isinstance(params, dict) else None, horizon=horizon)
    )
    cls: Any = info.load_class()
    forecaster: Forecaster = cls(model, horizon=horizon, level=level, seed=seed)
    return forecaster


def list_algorithms() -> list[dict[str, Any]]:
    """JSON-ready description of every algorithm (for ``GET /api/models/algorithms``)."""
    aliases: dict[str, list[str]] = {}
    for alias, target in SEED_ALIASES.items():
        if alias != target:
            aliases.setdefault(target, []).append(alias)
    out = []
    for a in _ALGORITHMS:
        ok, reason = a.availability
        out.append(
            {
                "id": a.id,
                "name": a.name,
                "family": a.family,
                "kind": a.kind,
                "description": a.description,
                "engine": a.engine,
                "available": ok,
                "reason": reason,
                "aliases": sorted(aliases.get(a.id, [])),
                "params_schema": a.params_model.model_json_schema(),
                "defaults": a.params_model().model_dump(mode="json"),
            }
        )
    return out
