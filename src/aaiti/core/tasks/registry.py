"""Job kinds: what may run in the pool, how its params are validated and how its result is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aaiti.core.db.session import UnitOfWork
from aaiti.core.tasks.models import Job

OnSuccess = Callable[[UnitOfWork, Job, dict[str, Any]], Awaitable[dict[str, Any] | None]]
OnEnd = Callable[[UnitOfWork, Job], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    target: str
    params_model: type[BaseModel]
    user_submittable: bool = False
    on_success: OnSuccess | None = None
    """Runs in the parent, inside the transaction that marks the job succeeded; may return a smaller result
    to store on the job row. ``uow.publisher`` is set, for events announced with ``uow.after_commit``."""
    on_end: OnEnd | None = None
    """Runs in the parent, inside the transaction that marks the job failed or cancelled (``job.status`` is
    already final). Jobs a crashed process left behind are marked in bulk at the next start, without it."""


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    _KINDS[kind.name] = kind


def get_kind(name: str) -> JobKind | None:
    return _KINDS.get(name)


def all_kinds() -> list[JobKind]:
    return list(_KINDS.values())


class SelftestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(10, ge=1, le=100)
    step_seconds: float = Field(0.1, ge=0.0, le=1.0)


register(JobKind("selftest", "aaiti.core.tasks.worker:selftest", SelftestParams, user_submittable=True))
