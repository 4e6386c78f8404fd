"""/api/auth: register, login (JSON and OAuth2 form), refresh, logout, me, change password.

Two ways to hold the refresh token (RELIABILITY TOK-09):

- scripts get it in the body and send it back in the body (``{"refresh_token": ...}``); no cookies;
- the dashboard logs in with ``refresh_cookie: true``: the token is set as ``__Host-aaiti_refresh``
  (HttpOnly, Secure, SameSite=Strict, Path=/) and never reaches JavaScript; the dashboard keeps only the
  access token, in memory. A refresh without a body uses the cookie, and because a cookie makes the endpoint
  forgeable across sites, it is accepted only with an ``Origin`` header naming this host or a CORS origin.

The ``__Host-`` prefix requires ``Path=/`` (browsers reject it with any other path), so the cookie cannot be
scoped to ``/api/auth`` as RELIABILITY suggests; the prefix (no Domain, Secure, host-only) is the stronger
guarantee, and only the refresh route reads the cookie.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from aaiti.admin.service import read_setting
from aaiti.auth.dependencies import Auth, CurrentUser
from aaiti.auth.models import User
from aaiti.auth.schemas import ChangePasswordIn, LoginIn, RefreshIn, RegisterIn, TokenOut, UserOut
from aaiti.auth.service import IssuedTokens, UserSnapshot
from aaiti.core.audit import Outcome, record_audit
from aaiti.core.dependencies import Core, UoW, audit_context, client_ip
from aaiti.core.errors import Forbidden, TooManyRequests, Unauthorized
from aaiti.core.principal import Principal

router = APIRouter(prefix="/api/auth", tags=["auth"])

REFRESH_COOKIE = "__Host-aaiti_refresh"
_COOKIE_FLAGS = "Path=/; Secure; HttpOnly; SameSite=Strict"
CLEAR_REFRESH_COOKIE = f"{REFRESH_COOKIE}=; Max-Age=0; {_COOKIE_FLAGS}"


def _tokens(t: IssuedTokens, *, response: Response | None = None) -> TokenOut:
    """The token answer; with ``response``, the refresh token goes into the cookie and not into the body."""
    if response is not None:
        response.headers.append(
            "set-cookie", f"{REFRESH_COOKIE}={t.refresh_token}; Max-Age={t.refresh_expires_in}; {_COOKIE_FLAGS}"
        )
    return TokenOut(
        access_token=t.access_token,
        refresh_token=None if response is not None else t.refresh_token,
        expires_in=t.expires_in,
        refresh_expires_in=t.refresh_expires_in,
    )


def _origin_allowed(origin: str, request: Request, cors_origins: list[str]) -> bool:
    """This very host (Origin's host:port equals the Host header) or an exact CORS origin."""
    if origin in cors_origins:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host")
    return parts.scheme in {"http", "https"} and bool(host) and parts.netloc == host and not parts.path


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


async def _login(request: Request, uow: UoW, auth: Auth, email: str, password: str) -> IssuedTokens:
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
    return tokens


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, response: Response, uow: UoW, auth: Auth) -> TokenOut:
    """With ``refresh_cookie: true`` (the dashboard) the refresh token is set as an HttpOnly cookie."""
    tokens = await _login(request, uow, auth, body.email, body.password)
    return _tokens(tokens, response=response if body.refresh_cookie else None)


@router.post("/token", response_model=TokenOut, summary="Login with the OAuth2 password form (/docs)")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, uow: UoW, auth: Auth
) -> TokenOut:
    return _tokens(await _login(request, uow, auth, form.username[:254], form.password[:129]))


@router.post("/refresh", response_model=TokenOut)
async def refresh(
    request: Request, response: Response, uow: UoW, auth: Auth, core: Core, body: RefreshIn | None = None
) -> TokenOut:
    """Rotates the refresh token. Scripts send it in the body; without a body the HttpOnly cookie is used,
    from this host's (or a CORS-allowed) Origin only. A foreign Origin is refused either way (403)."""
    origin = request.headers.get("origin")
    allowed = core.settings.server.cors_origins
    if origin is not None and not _origin_allowed(origin, request, allowed):
        raise Forbidden("cross-origin refresh refused")
    if body is not None:
        raw, cookie_mode = body.refresh_token, False
    else:
        cookie = request.cookies.get(REFRESH_COOKIE)
        if not cookie:
            raise Unauthorized('no refresh token: send {"refresh_token": ...} or log in again')
        if origin is None:
            raise Forbidden("a cookie refresh needs an Origin header")
        raw, cookie_mode = cookie, True
    try:
        tokens = await auth.refresh(uow.session, audit_context(request), raw)
    except Unauthorized as exc:
        if cookie_mode:
            exc.headers["set-cookie"] = CLEAR_REFRESH_COOKIE  # a dead cookie is not worth sending again
        raise
    finally:
        await uow.commit()  # rotation, or the family revocation on reuse
    return _tokens(tokens, response=response if cookie_mode else None)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, principal: CurrentUser, uow: UoW, auth: Auth) -> Response:
    """Ends every session of the caller: all refresh tokens revoked, access tokens invalid at once."""
    await auth.logout(uow.session, audit_context(request), principal)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"set-cookie": CLEAR_REFRESH_COOKIE})


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
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"set-cookie": CLEAR_REFRESH_COOKIE})
