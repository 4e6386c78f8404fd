"""Bodies of /api/jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=64, description="A user-submittable job kind (e.g. 'selftest')")
    params: dict[str, Any] = Field(default_factory=dict)
