"""The seed's ``trading_bots`` table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, JSONType, UTCDateTime, Uuid, new_uuid, utcnow


class TradingBot(Base):
    __tablename__ = "trading_bots"
    __table_args__ = (
        Index("idx_trading_bots_user_id", "user_id"),
        Index("idx_trading_bots_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="stopped", server_default="stopped")
    configuration: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    performance_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_active: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
