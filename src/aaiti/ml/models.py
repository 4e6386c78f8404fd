"""The seed's ``ml_models`` and ``predictions`` tables (columns as in the seed, types made portable)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
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


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        Index("idx_predictions_model_id", "model_id"),
        Index("idx_predictions_symbol", "symbol"),
        Index("idx_predictions_timestamp", "timestamp"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    prediction_value: Mapped[float] = mapped_column(Float, nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    features: Mapped[list[Any] | dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
