"""The seed's ``ml_models`` and ``predictions`` tables (columns as in the seed, types made portable), the columns
training and live tracking added to them (migration 0003), and ``model_versions``: one row per trained artefact.

Status of a model (``ml_models.training_status``): ``untrained`` -> ``training`` -> ``trained`` | ``failed``.
``training_job_id`` is a soft reference to the ``jobs`` row of the latest training (no foreign key: the status
reconciler treats a missing job as a lost training). ``training_spec`` holds what to train on (data source,
target, horizon, features, evaluation, seed); ``parameters`` the algorithm's validated parameters.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, JSONType, UTCDateTime, Uuid, new_uuid, utcnow


class MLModel(Base):
    __tablename__ = "ml_models"
    __table_args__ = (
        Index("idx_ml_models_user_id", "user_id"),
        Index("idx_ml_models_algorithm_type", "algorithm_type"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    algorithm_type: Mapped[str] = mapped_column(String(64), nullable=False)
    target_timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    symbols: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    training_status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="untrained", server_default="untrained"
    )
    performance_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_trained: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Added by 0003.
    training_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    training_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    training_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Prediction(Base):
    """One forecast. ``prediction_value``, ``lower_value``, ``upper_value`` and ``actual_value`` are in the units
    of the forecast's target at its last step (a price, a log return, P(up) for direction classifiers, a position
    for the RL trader; ``actual_value`` is then the close-to-close log return). ``origin_time`` is the open time
    of the last closed bar the forecast used; ``target_time`` the open time of the bar whose close it forecasts."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("idx_predictions_model_id", "model_id"),
        Index("idx_predictions_symbol", "symbol"),
        Index("idx_predictions_timestamp", "timestamp"),
        Index("idx_predictions_model_id_target_time", "model_id", "target_time"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    prediction_value: Mapped[float] = mapped_column(Float, nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    features: Mapped[list[Any] | dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Added by 0003.
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    horizon: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    target_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lower_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    forecast: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    actual_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class ModelVersion(Base):
    """One trained artefact of a model: where its file is (relative to the artefact root), the SHA-256 recorded
    when the server wrote it, what it was trained on and how it scored out of sample."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    algorithm: Mapped[str] = mapped_column(String(64), nullable=False)
    artifact_path: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_format: Mapped[str] = mapped_column(String(32), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    training_window: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    test_window: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    data_window: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    data_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
