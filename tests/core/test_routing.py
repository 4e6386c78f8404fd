"""The API is mounted flat (see ``aaiti.api``): no lazily included router sits in the request path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route
from tests.conftest import Account

from aaiti.api import mount_api


def test_every_route_is_a_plain_route(app: Any) -> None:
    routes = app.fastapi.router.routes
    lazy = [route for route in routes if not isinstance(route, APIRoute | Route | Mount)]
    assert not lazy, f"nested routers in the request path: {lazy}"
    api_paths = [route.path for route in routes if isinstance(route, APIRoute)]
    assert "/api/auth/me" in api_paths
    assert {path for path in api_paths if not path.startswith("/api/")} <= {"/metrics", "/"}


def test_mount_api_refuses_a_nested_router(monkeypatch: pytest.MonkeyPatch) -> None:
    outer = APIRouter(prefix="/api/outer")
    outer.include_router(APIRouter(prefix="/inner"))
    monkeypatch.setattr("aaiti.api.api_routers", lambda: [outer])
    with pytest.raises(TypeError, match="plain routes"):
        mount_api(FastAPI())


def test_mount_api_refuses_a_route_outside_api(monkeypatch: pytest.MonkeyPatch) -> None:
    stray = APIRouter(prefix="/elsewhere")
    stray.add_api_route("/x", lambda: None)
    monkeypatch.setattr("aaiti.api.api_routers", lambda: [stray])
    with pytest.raises(TypeError, match="plain routes"):
        mount_api(FastAPI())


def test_bearer_scheme_is_documented_on_protected_routes(app: Any) -> None:
    schema = app.fastapi.openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Access token from /api/auth/login",
    }
    assert schema["paths"]["/api/auth/me"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/api/health"]["get"]


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "missing bearer token"),
        ({"Authorization": "Bearer "}, "missing bearer token"),
    ],
)
async def test_bearer_header_shapes(client: httpx.AsyncClient, headers: dict[str, str], detail: str) -> None:
    res = await client.get("/api/auth/me", headers=headers)
    assert res.status_code == 401
    assert res.json() == {"error": "unauthorized", "detail": detail}
    assert res.headers["www-authenticate"] == "Bearer"


async def test_two_authorization_headers_are_refused(client: httpx.AsyncClient, alice: Account) -> None:
    res = await client.get(
        "/api/auth/me",
        headers=[("Authorization", f"Bearer {alice.access}"), ("Authorization", f"Bearer {alice.access}")],
    )
    assert res.status_code == 401
    assert res.json()["detail"] == "exactly one Authorization header is allowed"
