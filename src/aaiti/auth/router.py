"""/api/auth: register, login (JSON and OAuth2 form), refresh, logout, me, change password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from aaiti.admin.service import read_setting
from aaiti.auth.dependencies import Auth, CurrentUser
from aaiti.auth.models import User
from aaiti.auth.schemas import ChangePasswordIn, LoginIn, RefreshIn, RegisterIn, TokenOut, UserOut
from aaiti.auth.service import IssuedTokens, UserSnapshot
from aaiti.core.audit import Outcome, record_audit
from aaiti.core.dependencies import Core, UoW, audit_context, client_ip
from aaiti.core.errors import Forbidden, TooManyRequests
from aaiti.core.principal import Principal

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _tokens(t: IssuedTokens) -> TokenOut:
    return TokenOut(access_token=t.access_token, refresh_token=t.refresh_token, expires_in=t.expires_in)


@router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def register(body: RegisterIn, request: Request, uow: UoW, auth: Auth, core: Core) -> User:
    stored = await read_setting(uow.session, "registration.open")
    if not (core.settings.auth.registration_open if stored is None else stored):
        raise Forbidden("registration is closed; ask an administrator for an account")
    await auth.limiter.hit(
        f"register:ip:{client_ip(request)}",
        limit=auth.rules.per_ip,
        window_s=auth.rules.window_s,
        what="registrations",
    )
    user = await auth.register(uow.session, audit_context(request), body.email, body.password)
    await uow.commit()
    return user


async def _login(request: Request, uow: UoW, auth: Auth, email: str, password: str) -> TokenOut:
    ctx = audit_context(request)
    try:
        await auth.check_login_rate(email, ctx.ip_address)
    except TooManyRequests:
        record_audit(
            uow.session,
            ctx,
            "auth.login",
            resource_type="user",
            outcome=Outcome.denied,
            details={"email": email.lower()[:254], "reason": "rate limited"},
        )
        await uow.commit()
        raise
    try:
        tokens = await auth.login(uow.session, ctx, email, password)
    finally:
        await uow.commit()  # the success or the audited failure
    return _tokens(tokens)


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, uow: UoW, auth: Auth) -> TokenOut:
    return await _login(request, uow, auth, body.email, body.password)


@router.post("/token", response_model=TokenOut, summary="Login with the OAuth2 password form (/docs)")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, uow: UoW, auth: Auth
) -> TokenOut:
    return await _login(request, uow, auth, form.username[:254], form.password[:129])


@router.post("/refresh", response_model=TokenOut)
async def refresh(body: RefreshIn, request: Request, uow: UoW, auth: Auth) -> TokenOut:
    try:
        tokens = await auth.refresh(uow.session, audit_context(request), body.refresh_token)
    finally:
        await uow.commit()  # rotation, or the family revocation on reuse
    return _tokens(tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, principal: CurrentUser, uow: UoW, auth: Auth) -> Response:
    """Ends every session of the caller: all refresh tokens revoked, access tokens invalid at once."""
    await auth.logout(uow.session, audit_context(request), principal)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserOut)
async def me(request: Request, principal: CurrentUser) -> UserSnapshot:
    """The caller's account, as read by the authentication check of this very request."""
    snapshot: UserSnapshot = request.state.user_snapshot
    return snapshot


@router.post("/change-password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: ChangePasswordIn, request: Request, principal: CurrentUser, uow: UoW, auth: Auth
) -> Response:
    """Requires the current password; every existing session is ended (log in again)."""
    _: Principal = principal
    try:
        await auth.change_password(
            uow.session, audit_context(request), principal, body.current_password, body.new_password
        )
    except Forbidden:
        await uow.commit()  # keep the audited failure
        raise
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
