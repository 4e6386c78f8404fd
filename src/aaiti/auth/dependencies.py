"""Authentication and role checks for routes.

``CurrentUser`` verifies the bearer token (signature, algorithm, iss, aud, exp, typ) and compares its token
version and the account's active flag with the database on every request, so logout, password change, role
change and deactivation take effect at once. Tokens are accepted only in the Authorization header.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aaiti.auth.service import AuthService
from aaiti.core.errors import Forbidden, Unauthorized
from aaiti.core.principal import Principal

bearer = HTTPBearer(auto_error=False, description="Access token from /api/auth/login")


async def get_auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(get_auth_service)]


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    # Reads app.state directly rather than through the Core/Auth dependencies: this runs on every request.
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if len(request.headers.getlist("authorization")) != 1:
        raise Unauthorized("exactly one Authorization header is allowed", headers={"WWW-Authenticate": "Bearer"})
    auth: AuthService = request.app.state.auth
    claims = auth.codec.decode_access(credentials.credentials)
    principal, snapshot = await auth.authenticate(request.app.state.core.db.fast, claims)
    request.state.principal = principal
    request.state.user_snapshot = snapshot
    structlog.contextvars.bind_contextvars(user_id=str(principal.id))
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def require_trader(principal: CurrentUser) -> Principal:
    """Any role that may change things (trader, admin). Viewers read only."""
    if not principal.can_mutate:
        raise Forbidden("viewers cannot change anything")
    return principal


async def require_admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise Forbidden("administrators only")
    return principal


Trader = Annotated[Principal, Depends(require_trader)]
Admin = Annotated[Principal, Depends(require_admin)]
