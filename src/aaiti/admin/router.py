"""/api/users (admin), /api/settings (admins write, everyone reads non-secret values), /api/audit-logs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from aaiti.admin import service
from aaiti.admin.schemas import AuditChainReportOut, AuditLogOut, AuditLogPage, SettingIn, SettingOut
from aaiti.auth.dependencies import Admin, Auth, CurrentUser
from aaiti.auth.models import User
from aaiti.auth.schemas import UserOut, UserPage, UserPatch
from aaiti.core.audit import Outcome, verify_audit_chain
from aaiti.core.dependencies import Core, Paging, ReadSession, UoW, audit_context
from aaiti.core.errors import Invalid

users_router = APIRouter(prefix="/api/users", tags=["users"])
settings_router = APIRouter(prefix="/api/settings", tags=["settings"])
audit_router = APIRouter(prefix="/api/audit-logs", tags=["audit"])

SettingKey = Annotated[str, Path(max_length=128, pattern=r"^[a-z0-9_.]+$")]


@users_router.get("", response_model=UserPage)
async def list_users(_: Admin, session: ReadSession, auth: Auth, page: Paging) -> UserPage:
    users, total = await auth.list_users(session, page.limit, page.offset)
    return UserPage(items=[UserOut.model_validate(u) for u in users], total=total, limit=page.limit, offset=page.offset)


@users_router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID, body: UserPatch, request: Request, admin: Admin, uow: UoW, auth: Auth
) -> User:
    """Change role and/or active flag. Either change ends the user's sessions at once."""
    user = await auth.update_user(uow.session, audit_context(request), admin, user_id, body.role, body.is_active)
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is not None:
        uow.after_commit(lambda: gateway.drop_user(user_id))
    await uow.commit()
    return user


@settings_router.get("", response_model=list[SettingOut])
async def list_settings(_: CurrentUser, session: ReadSession) -> list[SettingOut]:
    return await service.list_settings(session)


@settings_router.put("/{key}", response_model=SettingOut)
async def put_setting(key: SettingKey, body: SettingIn, request: Request, _: Admin, uow: UoW, core: Core) -> SettingOut:
    out = await service.put_setting(uow.session, audit_context(request), core.clock, key, body.value)
    await uow.commit()
    return out


@audit_router.get("/verify", response_model=AuditChainReportOut)
async def verify_audit_logs(_: Admin, core: Core) -> AuditChainReportOut:
    """Recompute the audit hash chain and compare it with the stored head (docs/audit.md)."""
    # A fresh read session: the check needs a transaction of its own (one snapshot on PostgreSQL).
    async with core.db.read() as session:
        report = await verify_audit_chain(session)
    return AuditChainReportOut(
        ok=report.ok,
        count=report.count,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        bad_seq=report.bad_seq,
        reason=report.reason,
    )


@audit_router.get("", response_model=AuditLogPage)
async def list_audit_logs(
    principal: CurrentUser,
    session: ReadSession,
    page: Paging,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Outcome | None = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
    user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditLogPage:
    """Your own entries; administrators see everyone's and may filter by ``user_id``."""
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise Invalid("since/until must carry a time zone (e.g. 2026-01-01T00:00:00Z)")
    rows, total = await service.list_audit_logs(
        session,
        principal,
        limit=page.limit,
        offset=page.offset,
        action=action,
        outcome=outcome.value if outcome else None,
        resource_type=resource_type,
        user_id=user_id,
        since=since,
        until=until,
    )
    return AuditLogPage(
        items=[AuditLogOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )
