"""Bodies of /api/models and the payloads of the ``model_trained`` / ``model_prediction`` events.

Inputs forbid unknown fields (mass assignment: ``training_status``, ``user_id``, ``performance_metrics`` and
the like are never writable). Times in specs are epoch milliseconds, UTC (candle open times).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from aaiti.ml.evaluation import EvaluationConfig
from aaiti.ml.features import FeatureConfig

TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,2}[mhdw]$"
CompareMetric = Literal[
    "mae",
    "rmse",
    "mape",
    "r2",
    "mase",
    "theil_u",
    "rmse_skill",
    "directional_accuracy",
    "precision_up",
    "recall_up",
    "f1_up",
    "coverage",
    "interval_width",
    "brier",
]


class _SpecFields(BaseModel):
    """Training-spec fields shared by create and update (see ``aaiti.ml.training.TrainSpec``)."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["price", "log_return"] = Field("price", description="Scored target at horizon h.")
    horizon: int = Field(1, ge=1, le=500, description="Bars ahead (h).")
    interval_level: float = Field(0.9, ge=0.5, le=0.99, description="Central prediction-interval level.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed: same data + seed = same model.")
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    start_ts: int | None = Field(None, ge=0, description="First candle open time to train on (epoch ms).")
    end_ts: int | None = Field(None, ge=0, description="Last candle open time to train on (epoch ms, inclusive).")


class ModelCreate(_SpecFields):
    """A new model. Data: a bundled ``dataset`` (e.g. ``BTC-USD_1d``), or stored candles of ``symbols[0]`` at
    ``target_timeframe`` (optionally from one ``candle_source``)."""

    name: str = Field(min_length=1, max_length=200)
    algorithm: str = Field(
        min_length=1,
        max_length=64,
        validation_alias=AliasChoices("algorithm", "algorithm_type"),
        description="An algorithm id from /api/models/algorithms, or one of the seed's ids (mapped).",
    )
    parameters: dict[str, Any] = Field(default_factory=dict, description="The algorithm's parameters.")
    dataset: str | None = Field(None, max_length=64, description="Bundled dataset name.")
    symbols: list[str] | None = Field(None, min_length=1, max_length=1, description="One ticker, e.g. ['BTC'].")
    target_timeframe: str | None = Field(None, pattern=TIMEFRAME_PATTERN, description="e.g. 1h, 1d.")
    candle_source: str | None = Field(None, max_length=40, description="Stored-candle source (default: largest).")

    @field_validator("name")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name is empty")
        return v


class ModelUpdate(BaseModel):
    """Rename, or change parameters / the training spec (which resets the model to ``untrained``). The data
    source and the algorithm are fixed: create another model for another series or algorithm."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    parameters: dict[str, Any] | None = None
    target: Literal["price", "log_return"] | None = None
    horizon: int | None = Field(None, ge=1, le=500)
    interval_level: float | None = Field(None, ge=0.5, le=0.99)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    features: FeatureConfig | None = None
    evaluation: EvaluationConfig | None = None
    start_ts: int | None = Field(None, ge=0)
    end_ts: int | None = Field(None, ge=0)
    live_predict: bool | None = Field(
        None,
        description="Predict on each closed live bar of the model's symbol and timeframe (what running bots "
        "use). Stored in the training spec; does not reset the model.",
    )


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon: int | None = Field(None, ge=1, le=500, description="Steps to forecast (default: the model's h).")
    as_of: int | None = Field(
        None,
        ge=0,
        description="Forecast from the last candle with open time <= as_of (epoch ms) instead of the latest; "
        "must be after the model's training window (a replay, never a look into the fitted data).",
    )


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_ids: list[uuid.UUID] = Field(min_length=2, max_length=20)
    metric: CompareMetric = Field("rmse", description="Ranking metric (coverage ranks by distance to the level).")

    @field_validator("model_ids")
    @classmethod
    def _unique(cls, v: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(v)) != len(v):
            raise ValueError("model ids repeat")
        return v


class JobRef(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class MetricRow(BaseModel):
    metric: str
    model: float | None
    naive: float | None
    better: Literal["model", "naive", "tie"] | None = Field(description="Which forecast scored better, if both exist.")


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    algorithm: str
    created_at: datetime
    artifact_format: str
    sha256: str
    size: int
    params: dict[str, Any]
    spec: dict[str, Any]
    metrics: dict[str, Any]
    training_window: dict[str, Any]
    test_window: dict[str, Any] | None
    data_window: dict[str, Any] | None
    data_fingerprint: str
    details: dict[str, Any] | None
    job_id: uuid.UUID | None


class ModelOut(BaseModel):
    id: uuid.UUID
    name: str
    algorithm: str
    algorithm_type: str = Field(description="The seed's column: the algorithm id that runs.")
    requested_algorithm: str | None
    algorithm_name: str
    family: str
    kind: str
    target_timeframe: str
    symbols: list[str]
    parameters: dict[str, Any]
    training: dict[str, Any] = Field(description="Data source, target, horizon, features, evaluation, seed.")
    training_status: Literal["untrained", "training", "trained", "failed"]
    training_error: str | None
    training_job: JobRef | None
    performance_metrics: dict[str, Any] | None
    evaluation: list[MetricRow] | None = Field(description="The latest version's metrics beside the naive forecast's.")
    latest_version: VersionOut | None = None
    created_at: datetime
    last_trained: datetime | None


class ModelPage(BaseModel):
    items: list[ModelOut]
    total: int
    limit: int
    offset: int


class VersionPage(BaseModel):
    items: list[VersionOut]
    total: int
    limit: int
    offset: int


class TrainOut(BaseModel):
    job: JobRef
    model: ModelOut
    version: int = Field(description="The version this training will create.")


class PredictionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    model_id: uuid.UUID
    version: int | None
    symbol: str
    timestamp: datetime
    prediction_value: float
    confidence: float | None
    horizon: int | None
    origin_time: datetime | None
    target_time: datetime | None
    lower_value: float | None
    upper_value: float | None
    forecast: dict[str, Any] | None
    features: dict[str, Any] | list[Any] | None
    actual_value: float | None
    resolved_at: datetime | None
    outcome: dict[str, Any] | None


class PredictOut(BaseModel):
    prediction: PredictionOut
    resolved: int = Field(description="Earlier predictions whose actual arrived with this call.")
    live: dict[str, Any] | None = Field(description="Live accuracy of the current version (performance_metrics.live).")


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    total: int
    limit: int
    offset: int


class RankedModel(BaseModel):
    rank: int | None
    model_id: uuid.UUID
    name: str
    algorithm: str
    version: int
    value: float | None
    naive_value: float | None
    null_reason: str | None
    metrics: dict[str, Any]


class CompareOut(BaseModel):
    metric: str
    order: Literal["lower_is_better", "higher_is_better", "closest_to_level"]
    data_fingerprint: str
    target: str
    horizon: int
    test_window: dict[str, Any]
    naive: dict[str, Any] = Field(description="The naive forecast's metrics on the shared test window.")
    ranking: list[RankedModel]


class AlgorithmsOut(BaseModel):
    items: list[dict[str, Any]]
    seed_aliases: dict[str, str] = Field(description="The seed product's ids and the algorithm each runs.")


class ModelTrainedEvent(BaseModel):
    """``model_trained`` in ``user:{owner}``: a training ended (trained, failed or cancelled)."""

    model_id: uuid.UUID
    name: str
    status: Literal["untrained", "trained", "failed"]
    outcome: Literal["trained", "failed", "cancelled"]
    version: int | None
    job_id: uuid.UUID | None
    error: str | None
    metrics: dict[str, Any] | None


class ModelPredictionEvent(BaseModel):
    """``model_prediction`` in ``user:{owner}``: a forecast was stored."""

    model_id: uuid.UUID
    prediction: PredictionOut
    live: dict[str, Any] | None


class ModelLiveEvent(BaseModel):
    """``model_live`` in ``user:{owner}``: a closed live bar resolved stored predictions of the model."""

    model_id: uuid.UUID
    resolved: list[PredictionOut]
    live: dict[str, Any] | None
