"""The append-only audit log: one row per mutating action, written in the same transaction as the change.

UPDATE and DELETE on ``audit_logs`` are rejected by the database (triggers created by the migration).
Details are redacted before they are stored: keys that look like secrets never reach the table.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, JSONType, UTCDateTime, Uuid, new_uuid, utcnow

SECRET_MARKERS = (
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
)
REDACTED = "[redacted]"
MAX_DETAIL_STRING = 500


class Outcome(enum.StrEnum):
    success = "success"
    denied = "denied"
    failed = "failed"


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("idx_audit_logs_user_id", "user_id"),
        Index("idx_audit_logs_timestamp", "timestamp"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default=Outcome.success.value)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who acts and from where; built by the HTTP layer, passed to services as plain data."""

    user_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def redact(value: Any, *, _depth: int = 0) -> Any:
    """Replace secret-looking keys' values, cap strings and nesting."""
    if _depth > 5:
        return REDACTED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if any(marker in lowered for marker in SECRET_MARKERS):
                out[str(key)] = REDACTED
            else:
                out[str(key)] = redact(item, _depth=_depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, _depth=_depth + 1) for v in value[:50]]
    if isinstance(value, str):
        return value[:MAX_DETAIL_STRING]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)[:MAX_DETAIL_STRING]


def record_audit(
    session: AsyncSession,
    ctx: AuditContext,
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: str | uuid.UUID | None = None,
    outcome: Outcome = Outcome.success,
    details: dict[str, Any] | None = None,
    user_id: uuid.UUID | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction (the caller commits)."""
    row = AuditLog(
        user_id=user_id if user_id is not None else ctx.user_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        outcome=outcome.value,
        details=redact(details) if details else None,
        ip_address=ctx.ip_address,
        user_agent=(ctx.user_agent or "")[:256] or None,
        request_id=ctx.request_id,
    )
    session.add(row)
    return row
