"""Accounts: registration, login, refresh-token rotation with reuse detection, logout, password change,
admin user management. Services take a session and never commit; the router owns the transaction.

Invalidation: logout, password change, deactivation and role change bump ``users.token_version`` (every access
token carries ``tv`` and is compared on each request) and revoke all of the user's refresh tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.auth.models import RefreshToken, Role, User
from aaiti.auth.security import (
    AccessClaims,
    PasswordHasher,
    TokenCodec,
    hash_refresh_token,
    new_refresh_token,
    password_problem,
)
from aaiti.core.audit import AuditContext, Outcome, record_audit
from aaiti.core.clock import Clock
from aaiti.core.db.fastread import FastReader
from aaiti.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from aaiti.core.observability import metrics
from aaiti.core.principal import Principal
from aaiti.core.ratelimit import RateLimiter

LOGIN_FAILED = "invalid email or password"
USER_SNAPSHOT_SQL = "SELECT id, email, role, is_active, token_version, created_at, last_login FROM users WHERE id = :id"


def _as_utc(value: object) -> datetime | None:
    """Driver values to aware UTC: SQLite returns ISO text (stored as UTC), PostgreSQL aware datetimes."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    id: uuid.UUID
    email: str
    role: str
    is_active: bool
    token_version: int
    created_at: datetime
    last_login: datetime | None

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> UserSnapshot:
        raw_id, email, role, active, version, created, last = row
        created_at = _as_utc(created)
        assert created_at is not None
        return cls(
            raw_id if isinstance(raw_id, uuid.UUID) else uuid.UUID(str(raw_id)),
            str(email),
            str(role),
            bool(active),
            int(str(version)),
            created_at,
            _as_utc(last),
        )


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class RateRules:
    per_account: int
    per_ip: int
    window_s: int


class AuthService:
    def __init__(
        self,
        *,
        hasher: PasswordHasher,
        codec: TokenCodec,
        clock: Clock,
        limiter: RateLimiter,
        refresh_ttl_s: int,
        rules: RateRules,
    ) -> None:
        self.hasher = hasher
        self.codec = codec
        self.clock = clock
        self.limiter = limiter
        self.refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self.rules = rules

    # -- registration and accounts -------------------------------------------------------------------------
    async def create_user(self, session: AsyncSession, email: str, password: str, role: Role) -> User:
        email = email.lower()
        problem = password_problem(password, email)
        if problem:
            raise Invalid(problem)
        exists = await session.scalar(select(User.id).where(User.email == email))
        if exists is not None:
            raise Conflict("an account with this email already exists")
        user = User(
            email=email,
            password_hash=await self.hasher.hash(password),
            role=role.value,
            created_at=self.clock.now(),
            updated_at=self.clock.now(),
        )
        session.add(user)
        await session.flush()
        return user

    async def register(self, session: AsyncSession, ctx: AuditContext, email: str, password: str) -> User:
        user = await self.create_user(session, email, password, Role.trader)
        record_audit(
            session,
            ctx,
            "auth.register",
            resource_type="user",
            resource_id=user.id,
            user_id=user.id,
            details={"email": user.email, "role": user.role},
        )
        return user

    # -- login / refresh / logout ----------------------------------------------------------------------------
    async def check_login_rate(self, email: str, ip: str | None) -> None:
        await self.limiter.hit(
            f"login:ip:{ip or 'unknown'}",
            limit=self.rules.per_ip,
            window_s=self.rules.window_s,
            what="login attempts",
        )
        await self.limiter.hit(
            f"login:acct:{email.lower()}",
            limit=self.rules.per_account,
            window_s=self.rules.window_s,
            what="login attempts",
        )

    async def login(self, session: AsyncSession, ctx: AuditContext, email: str, password: str) -> IssuedTokens:
        """Unknown email, wrong password and deactivated account all answer the same 401."""
        email = email.lower()
        user = await session.scalar(select(User).where(User.email == email))
        valid, upgraded = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not valid or not user.is_active:
            record_audit(
                session,
                ctx,
                "auth.login",
                resource_type="user",
                resource_id=user.id if user else None,
                outcome=Outcome.failed,
                user_id=user.id if user else None,
                details={"email": email[:254]},
            )
            metrics.AUTH_EVENTS.labels(event="login", outcome="failed").inc()
            raise Unauthorized(LOGIN_FAILED)
        if upgraded:
            user.password_hash = upgraded
        user.last_login = self.clock.now()
        tokens = await self._issue(session, user, family_id=uuid.uuid4(), family_expires=None)
        record_audit(session, ctx, "auth.login", resource_type="user", resource_id=user.id, user_id=user.id)
        metrics.AUTH_EVENTS.labels(event="login", outcome="success").inc()
        return tokens

    async def refresh(self, session: AsyncSession, ctx: AuditContext, raw_token: str) -> IssuedTokens:
        await self.limiter.hit(
            f"refresh:ip:{ctx.ip_address or 'unknown'}",
            limit=self.rules.per_ip,
            window_s=self.rules.window_s,
            what="refresh attempts",
        )
        now = self.clock.now()
        row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(raw_token)))
        if row is None:
            metrics.AUTH_EVENTS.labels(event="refresh", outcome="failed").inc()
            raise Unauthorized("invalid refresh token")
        await self.limiter.hit(
            f"refresh:acct:{row.user_id}",
            limit=self.rules.per_account * 3,
            window_s=self.rules.window_s,
            what="refresh attempts",
        )
        if row.used_at is not None or row.revoked_at is not None:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            record_audit(
                session,
                ctx,
                "auth.refresh_reuse",
                resource_type="user",
                resource_id=row.user_id,
                user_id=row.user_id,
                outcome=Outcome.denied,
                details={"family": str(row.family_id)},
            )
            metrics.AUTH_EVENTS.labels(event="refresh_reuse", outcome="denied").inc()
            raise Unauthorized("refresh token already used; the session was revoked")
        if row.expires_at <= now:
            raise Unauthorized("refresh token expired")
        user = await session.get(User, row.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("invalid refresh token")
        row.used_at = now
        tokens = await self._issue(session, user, family_id=row.family_id, family_expires=row.expires_at)
        metrics.AUTH_EVENTS.labels(event="refresh", outcome="success").inc()
        return tokens

    async def logout(self, session: AsyncSession, ctx: AuditContext, principal: Principal) -> None:
        await self._invalidate_sessions(session, principal.id)
        record_audit(session, ctx, "auth.logout", resource_type="user", resource_id=principal.id)

    async def change_password(
        self, session: AsyncSession, ctx: AuditContext, principal: Principal, current: str, new: str
    ) -> None:
        user = await session.get(User, principal.id)
        if user is None:
            raise Unauthorized("invalid token")
        valid, _ = await self.hasher.verify(current, user.password_hash)
        if not valid:
            record_audit(
                session,
                ctx,
                "auth.change_password",
                resource_type="user",
                resource_id=user.id,
                outcome=Outcome.failed,
            )
            raise Forbidden("the current password is wrong")
        problem = password_problem(new, user.email)
        if problem:
            raise Invalid(problem)
        user.password_hash = await self.hasher.hash(new)
        await self._invalidate_sessions(session, user.id)
        record_audit(session, ctx, "auth.change_password", resource_type="user", resource_id=user.id)

    async def _issue(
        self, session: AsyncSession, user: User, *, family_id: uuid.UUID, family_expires: datetime | None
    ) -> IssuedTokens:
        now = self.clock.now()
        access, ttl = self.codec.encode_access(
            user_id=user.id, role=user.role, token_version=user.token_version, now=now
        )
        raw = new_refresh_token()
        expires_at = family_expires or now + self.refresh_ttl
        session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_refresh_token(raw),
                created_at=now,
                expires_at=expires_at,
            )
        )
        return IssuedTokens(access, raw, ttl, max(0, int((expires_at - now).total_seconds())))

    async def _invalidate_sessions(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(token_version=User.token_version + 1, updated_at=self.clock.now())
        )
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )

    # -- per-request authentication ---------------------------------------------------------------------------
    async def authenticate(self, fast: FastReader, claims: AccessClaims) -> tuple[Principal, UserSnapshot]:
        """Check the token's version and the account's state in the database (every request)."""
        key: object = claims.user_id.hex if fast.is_sqlite else claims.user_id
        row = await fast.fetch_point(USER_SNAPSHOT_SQL, {"id": key})
        if row is None:
            raise Unauthorized("invalid or revoked token")
        snapshot = UserSnapshot.from_row(row)
        if not snapshot.is_active or snapshot.token_version != claims.token_version:
            raise Unauthorized("invalid or revoked token")
        return Principal(id=snapshot.id, email=snapshot.email, role=snapshot.role), snapshot

    async def invalid_sessions(self, session: AsyncSession, pairs: list[tuple[uuid.UUID, int]]) -> set[uuid.UUID]:
        if not pairs:
            return set()
        rows = (
            await session.execute(
                select(User.id, User.is_active, User.token_version).where(User.id.in_({p[0] for p in pairs}))
            )
        ).all()
        current = {r.id: (r.is_active, r.token_version) for r in rows}
        return {uid for uid, tv in pairs if uid not in current or not current[uid][0] or current[uid][1] != tv}

    # -- admin ------------------------------------------------------------------------------------------------
    async def list_users(self, session: AsyncSession, limit: int, offset: int) -> tuple[list[User], int]:
        total = await session.scalar(select(func.count()).select_from(User)) or 0
        users = (
            await session.scalars(select(User).order_by(User.created_at, User.id).limit(limit).offset(offset))
        ).all()
        return list(users), total

    async def update_user(
        self,
        session: AsyncSession,
        ctx: AuditContext,
        actor: Principal,
        user_id: uuid.UUID,
        role: Role | None,
        is_active: bool | None,
    ) -> User:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("user not found")
        changes: dict[str, object] = {}
        if role is not None and role.value != user.role:
            changes["role"] = {"from": user.role, "to": role.value}
        if is_active is not None and is_active != user.is_active:
            changes["is_active"] = {"from": user.is_active, "to": is_active}
        if not changes:
            return user
        losing_admin = user.role == Role.admin.value and (
            (role is not None and role != Role.admin) or is_active is False
        )
        if losing_admin:
            admins = await session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == Role.admin.value, User.is_active.is_(True), User.id != user.id)
            )
            if not admins:
                raise Conflict("refused: this would leave no active administrator")
        if role is not None:
            user.role = role.value
        if is_active is not None:
            user.is_active = is_active
        await self._invalidate_sessions(session, user.id)
        await session.refresh(user)
        record_audit(session, ctx, "users.update", resource_type="user", resource_id=user.id, details=changes)
        return user

    async def ensure_admin(self, session: AsyncSession, email: str, password: str) -> tuple[User, bool]:
        """Create the admin account if the email is unknown (never resets an existing one)."""
        existing = await session.scalar(select(User).where(User.email == email.lower()))
        if existing is not None:
            return existing, False
        user = await self.create_user(session, email, password, Role.admin)
        record_audit(
            session,
            AuditContext(),
            "users.create_admin",
            resource_type="user",
            resource_id=user.id,
            details={"email": user.email},
        )
        return user, True
