"""Forecasting models (API path ``/api/models``): registry, features, honest evaluation, artefacts, jobs.

Importing this package is cheap: torch, statsmodels and scikit-learn load only when a model is created.
Worker-process code; it imports neither the database nor the realtime layer.
"""

from aaiti.ml.estimators.base import Cancelled, FitFailed, Forecast, Forecaster, TrainingData
from aaiti.ml.estimators.registry import (
    ALGORITHMS,
    SEED_ALIASES,
    AlgorithmInfo,
    create,
    list_algorithms,
    resolve,
    validate_params,
)

__all__ = [
    "ALGORITHMS",
    "SEED_ALIASES",
    "AlgorithmInfo",
    "Cancelled",
    "FitFailed",
    "Forecast",
    "Forecaster",
    "TrainingData",
    "create",
    "list_algorithms",
    "resolve",
    "validate_params",
]
