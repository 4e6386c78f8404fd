"""Job rows: submission (with the per-user concurrency cap), listing, cancellation. Owner-only."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select

from aaiti.core.audit import AuditContext, record_audit
from aaiti.core.clock import Clock
from aaiti.core.db.session import UnitOfWork
from aaiti.core.errors import Conflict, Invalid, NotFound, TooManyRequests
from aaiti.core.principal import Principal
from aaiti.core.tasks.models import TERMINAL_STATUSES, Job, JobStatus
from aaiti.core.tasks.registry import get_kind
from aaiti.core.tasks.runner import TaskRunner

ACTIVE = (JobStatus.queued.value, JobStatus.running.value)


async def submit_job(
    uow: UnitOfWork,
    runner: TaskRunner,
    clock: Clock,
    ctx: AuditContext,
    owner: Principal,
    kind_name: str,
    params: dict[str, Any],
    *,
    max_active: int,
    user_facing: bool = True,
) -> Job:
    """Create a queued job in the caller's transaction; the runner starts it after the commit."""
    kind = get_kind(kind_name)
    if kind is None or (user_facing and not kind.user_submittable):
        raise Invalid(f"unknown job kind {kind_name!r}")
    try:
        validated = kind.params_model.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"invalid params: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    active = (
        await uow.session.scalar(
            select(func.count()).select_from(Job).where(Job.owner_id == owner.id, Job.status.in_(ACTIVE))
        )
        or 0
    )
    if active >= max_active:
        raise TooManyRequests(f"at most {max_active} jobs may be queued or running per user", retry_after=5)
    job = Job(
        owner_id=owner.id,
        kind=kind.name,
        params=validated,
        status=JobStatus.queued.value,
        progress=0.0,
        created_at=clock.now(),
    )
    uow.session.add(job)
    await uow.session.flush()
    record_audit(uow.session, ctx, "jobs.submit", resource_type="job", resource_id=job.id, details={"kind": kind.name})
    job_id = job.id

    async def start() -> None:
        runner.enqueue(job_id)

    uow.after_commit(start)
    return job


async def get_owned(uow_or_session: Any, owner: Principal, job_id: uuid.UUID) -> Job:
    job = await uow_or_session.scalar(select(Job).where(Job.id == job_id, Job.owner_id == owner.id))
    if job is None:
        raise NotFound("job not found")
    return job  # type: ignore[no-any-return]


async def list_jobs(
    session: Any,
    owner: Principal,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    kind: str | None = None,
) -> tuple[list[Job], int]:
    query = select(Job).where(Job.owner_id == owner.id)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset))
    return list(rows.all()), total


async def cancel_job(
    uow: UnitOfWork, runner: TaskRunner, clock: Clock, ctx: AuditContext, owner: Principal, job_id: uuid.UUID
) -> Job:
    job = await get_owned(uow.session, owner, job_id)
    if JobStatus(job.status) in TERMINAL_STATUSES:
        raise Conflict(f"job already {job.status}")
    job.cancel_requested = True
    if job.status == JobStatus.queued.value:
        job.status = JobStatus.cancelled.value
        job.finished_at = clock.now()
        job.message = "cancelled before it started"
        kind = get_kind(job.kind)
        if kind is not None and kind.on_end is not None:
            await kind.on_end(uow, job)
    record_audit(uow.session, ctx, "jobs.cancel", resource_type="job", resource_id=job.id)

    async def signal() -> None:
        await runner.cancel(job_id)

    uow.after_commit(signal)
    return job
