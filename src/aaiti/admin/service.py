"""Settings (validated per key, secrets write-only) and audit-log queries (own rows, or all for admins)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.admin.models import Setting
from aaiti.admin.schemas import SettingOut
from aaiti.admin.settings_registry import SPECS, validate_setting
from aaiti.core.audit import AuditContext, AuditLog, record_audit
from aaiti.core.clock import Clock
from aaiti.core.principal import Principal


async def list_settings(session: AsyncSession) -> list[SettingOut]:
    rows = {s.key: s for s in (await session.scalars(select(Setting))).all()}
    out = []
    for key, spec in sorted(SPECS.items()):
        row = rows.get(key)
        value = None if spec.secret else (json.loads(row.value) if row else spec.default)
        out.append(
            SettingOut(
                key=key,
                value=value,
                description=spec.description,
                secret=spec.secret,
                is_set=row is not None,
                updated_at=row.updated_at if row else None,
            )
        )
    return out


async def put_setting(session: AsyncSession, ctx: AuditContext, clock: Clock, key: str, value: Any) -> SettingOut:
    stored = validate_setting(key, value)
    spec = SPECS[key]
    row = await session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=stored, description=spec.description, updated_at=clock.now())
        session.add(row)
    else:
        row.value = stored
        row.updated_at = clock.now()
    record_audit(
        session,
        ctx,
        "settings.update",
        resource_type="setting",
        resource_id=key,
        details={"setting": key, "value": "[secret]" if spec.secret else json.loads(stored)},
    )
    await session.flush()
    return SettingOut(
        key=key,
        value=None if spec.secret else json.loads(stored),
        description=spec.description,
        secret=spec.secret,
        is_set=True,
        updated_at=row.updated_at,
    )


async def read_setting(session: AsyncSession, key: str) -> Any:
    """The stored value (secrets included, for server-side use only) or the default."""
    row = await session.get(Setting, key)
    return json.loads(row.value) if row else SPECS[key].default


def _audit_query(
    principal: Principal,
    *,
    action: str | None,
    outcome: str | None,
    resource_type: str | None,
    user_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    query = select(AuditLog)
    if not principal.is_admin:
        query = query.where(AuditLog.user_id == principal.id)
    elif user_id is not None:
        query = query.where(AuditLog.user_id == user_id)
    if action:
        query = query.where(AuditLog.action == action)
    if outcome:
        query = query.where(AuditLog.outcome == outcome)
    if resource_type:
        query = query.where(AuditLog.resource_type == resource_type)
    if since:
        query = query.where(AuditLog.timestamp >= since)
    if until:
        query = query.where(AuditLog.timestamp < until)
    return query


async def list_audit_logs(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    offset: int,
    action: str | None = None,
    outcome: str | None = None,
    resource_type: str | None = None,
    user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditLog], int]:
    query = _audit_query(
        principal,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        user_id=user_id,
        since=since,
        until=until,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(AuditLog.timestamp.desc(), AuditLog.id).limit(limit).offset(offset))
    return list(rows.all()), total
