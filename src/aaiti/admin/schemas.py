"""Bodies of /api/settings and /api/audit-logs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue


class SettingOut(BaseModel):
    key: str
    value: Any | None
    description: str
    secret: bool
    is_set: bool
    updated_at: datetime | None


class SettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: JsonValue


class AuditLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    user_id: uuid.UUID | None
    action: str
    resource_type: str | None
    resource_id: str | None
    outcome: str
    details: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    timestamp: datetime


class AuditLogPage(BaseModel):
    items: list[AuditLogOut]
    total: int
    limit: int
    offset: int


class AuditChainReportOut(BaseModel):
    """``GET /api/audit-logs/verify``: ``count``/``head_seq``/``head_hash`` describe the verified prefix; when
    ``ok`` is false, ``bad_seq`` is the first seq that does not verify and ``reason`` says why."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None
    reason: str | None
