"""FastAPI dependencies shared by every router: core components, transactions, audit context, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.core.audit import AuditContext
from aaiti.core.context import CoreComponents
from aaiti.core.db.session import UnitOfWork

MAX_PAGE = 200


async def get_core(request: Request) -> CoreComponents:
    # async: FastAPI runs plain-def dependencies in a thread pool (two thread hops per request).
    core: CoreComponents = request.app.state.core
    return core


Core = Annotated[CoreComponents, Depends(get_core)]


async def get_uow(core: Core) -> AsyncIterator[UnitOfWork]:
    """A write transaction. The route commits explicitly; anything uncommitted is rolled back."""
    async with core.db.unit_of_work() as uow:
        yield uow


async def get_read_session(core: Core) -> AsyncIterator[AsyncSession]:
    async with core.db.read() as session:
        yield session


UoW = Annotated[UnitOfWork, Depends(get_uow)]
ReadSession = Annotated[AsyncSession, Depends(get_read_session)]


def client_ip(request: Request) -> str | None:
    """The peer address. X-Forwarded-For is honoured only via uvicorn's --forwarded-allow-ips (trusted proxies),
    which rewrites the client before it reaches us; a spoofed header from anyone else is ignored."""
    return request.client.host if request.client else None


def audit_context(request: Request) -> AuditContext:
    principal = getattr(request.state, "principal", None)
    return AuditContext(
        user_id=principal.id if principal is not None else None,
        ip_address=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None) or request.scope.get("state", {}).get("request_id"),
    )


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip")] = 0,
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(paging)]
