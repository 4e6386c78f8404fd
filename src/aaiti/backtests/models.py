"""The seed's ``backtests`` table. Capital columns are exact decimals (SQLite NUMERIC would be a float)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, DecimalText, JSONType, UTCDateTime, Uuid, new_uuid, utcnow


class Backtest(Base):
    __tablename__ = "backtests"
    __table_args__ = (
        Index("idx_backtests_user_id", "user_id"),
        Index("idx_backtests_model_id", "model_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    model_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ml_models.id"), nullable=True)
    bot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("trading_bots.id"), nullable=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    symbols: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date] = mapped_column(Date, nullable=False)
    initial_capital: Mapped[Decimal] = mapped_column(DecimalText, nullable=False)
    final_capital: Mapped[Decimal] = mapped_column(DecimalText, nullable=False)
    total_return: Mapped[float | None] = mapped_column(Float, nullable=True)
    performance_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    trades_data: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
