"""/api/jobs: list, detail, cancel (owner only) and submission of user-facing kinds (e.g. ``selftest``).

Built by a factory that receives the authentication dependencies, since core does not import the auth domain.
(No ``from __future__ import annotations`` here: FastAPI must resolve the factory-local ``Annotated`` aliases.)
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from aaiti.core.dependencies import Core, Paging, ReadSession, UoW, audit_context
from aaiti.core.principal import Principal
from aaiti.core.tasks import service
from aaiti.core.tasks.models import Job, JobStatus
from aaiti.core.tasks.schemas import JobIn, JobOut, JobPage


def build_jobs_router(reader: Callable[..., Any], writer: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])
    Reader = Annotated[Principal, Depends(reader)]
    Writer = Annotated[Principal, Depends(writer)]

    @router.get("", response_model=JobPage)
    async def list_jobs(
        principal: Reader,
        session: ReadSession,
        page: Paging,
        status_: Annotated[JobStatus | None, Query(alias="status")] = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
    ) -> JobPage:
        rows, total = await service.list_jobs(
            session,
            principal,
            limit=page.limit,
            offset=page.offset,
            status=status_.value if status_ else None,
            kind=kind,
        )
        return JobPage(
            items=[JobOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
        )

    @router.post("", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
    async def submit(body: JobIn, request: Request, principal: Writer, uow: UoW, core: Core) -> Job:
        job = await service.submit_job(
            uow,
            core.runner,
            core.clock,
            audit_context(request),
            principal,
            body.kind,
            body.params,
            max_active=core.settings.jobs.max_concurrent_per_user,
        )
        await uow.commit()
        return job

    @router.get("/{job_id}", response_model=JobOut)
    async def get_job(job_id: uuid.UUID, principal: Reader, session: ReadSession) -> Job:
        return await service.get_owned(session, principal, job_id)

    @router.post("/{job_id}/cancel", response_model=JobOut)
    async def cancel(job_id: uuid.UUID, request: Request, principal: Writer, uow: UoW, core: Core) -> Job:
        uow.publisher = core.publisher  # a job kind's on_end hook may announce what the cancellation changed
        job = await service.cancel_job(uow, core.runner, core.clock, audit_context(request), principal, job_id)
        await uow.commit()
        return job

    return router
