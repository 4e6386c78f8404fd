"""TOK-09: the dashboard's refresh token lives in an HttpOnly ``__Host-`` cookie; the cookie-authenticated refresh
answers only same-host (or CORS-allowed) origins; scripts use bearer tokens and get no cookie."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import PASSWORD, Account

from aaiti.auth.models import RefreshToken

COOKIE = "__Host-aaiti_refresh"
SAME_ORIGIN = "http://testserver"  # the test client's Host header is "testserver"
FLAGS = "Path=/; Secure; HttpOnly; SameSite=Strict"


def _cookie_value(res: httpx.Response) -> str:
    (header,) = res.headers.get_list("set-cookie")
    name, _, rest = header.partition("=")
    assert name == COOKIE
    return rest.split(";", 1)[0]


async def _cookie_login(client: httpx.AsyncClient, account: Account) -> tuple[dict[str, Any], str]:
    res = await client.post(
        "/api/auth/login", json={"email": account.email, "password": PASSWORD, "refresh_cookie": True}
    )
    assert res.status_code == 200, res.text
    return res.json(), _cookie_value(res)


async def _cookie_refresh(client: httpx.AsyncClient, cookie: str, origin: str | None = SAME_ORIGIN) -> httpx.Response:
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    if origin is not None:
        headers["Origin"] = origin
    return await client.post("/api/auth/refresh", headers=headers)


async def test_cookie_login_sets_a_host_only_httponly_cookie(client: httpx.AsyncClient, alice: Account) -> None:
    res = await client.post(
        "/api/auth/login", json={"email": alice.email, "password": PASSWORD, "refresh_cookie": True}
    )
    body = res.json()
    assert body["refresh_token"] is None, "the refresh token must not reach JavaScript"
    assert body["access_token"]
    assert body["refresh_expires_in"] == 7 * 86_400
    (header,) = res.headers.get_list("set-cookie")
    value = _cookie_value(res)
    assert header == f"{COOKIE}={value}; Max-Age={7 * 86_400}; {FLAGS}"
    assert len(value) >= 32
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


async def test_script_login_and_refresh_set_no_cookie(client: httpx.AsyncClient, alice: Account) -> None:
    login = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert "set-cookie" not in login.headers
    assert login.json()["refresh_token"]
    res = await client.post("/api/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
    assert res.status_code == 200
    assert "set-cookie" not in res.headers
    assert res.json()["refresh_token"]


async def test_cookie_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, app: Any, alice: Account
) -> None:
    _, first = await _cookie_login(client, alice)
    res = await _cookie_refresh(client, first)
    assert res.status_code == 200, res.text
    assert res.json()["refresh_token"] is None
    second = _cookie_value(res)
    assert second != first
    assert res.json()["refresh_expires_in"] <= 7 * 86_400
    # the rotated-away cookie again (a stolen copy): refused, the browser is told to drop it, the family dies
    reuse = await _cookie_refresh(client, first)
    assert reuse.status_code == 401
    assert reuse.headers["set-cookie"] == f"{COOKIE}=; Max-Age=0; {FLAGS}"
    assert (await _cookie_refresh(client, second)).status_code == 401


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", "http://testserver.evil.example", "http://testserver:8080", "file://"],
)
async def test_foreign_origin_is_refused_and_the_cookie_stays_valid(
    client: httpx.AsyncClient, alice: Account, origin: str
) -> None:
    _, cookie = await _cookie_login(client, alice)
    res = await _cookie_refresh(client, cookie, origin=origin)
    assert res.status_code == 403
    assert res.json() == {"error": "forbidden", "detail": "cross-origin refresh refused"}
    assert "set-cookie" not in res.headers
    assert (await _cookie_refresh(client, cookie)).status_code == 200, "a refused forgery must not burn the token"


async def test_cookie_refresh_without_origin_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    _, cookie = await _cookie_login(client, alice)
    res = await _cookie_refresh(client, cookie, origin=None)
    assert res.status_code == 403
    assert res.json()["detail"] == "a cookie refresh needs an Origin header"


async def test_foreign_origin_is_refused_for_body_refresh_too(client: httpx.AsyncClient, alice: Account) -> None:
    res = await client.post(
        "/api/auth/refresh", json={"refresh_token": alice.refresh}, headers={"Origin": "https://evil.example"}
    )
    assert res.status_code == 403


async def test_refresh_without_body_or_cookie_is_401(client: httpx.AsyncClient) -> None:
    res = await client.post("/api/auth/refresh", headers={"Origin": SAME_ORIGIN})
    assert res.status_code == 401
    assert "refresh_token" in res.json()["detail"]


async def test_body_refresh_wins_over_a_cookie(client: httpx.AsyncClient, alice: Account) -> None:
    _, cookie = await _cookie_login(client, alice)
    res = await client.post(
        "/api/auth/refresh", json={"refresh_token": alice.refresh}, headers={"Cookie": f"{COOKIE}={cookie}"}
    )
    assert res.status_code == 200
    assert res.json()["refresh_token"]
    assert "set-cookie" not in res.headers
    assert (await _cookie_refresh(client, cookie)).status_code == 200, "the cookie was not consumed"


async def test_logout_and_password_change_clear_the_cookie(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    body, cookie = await _cookie_login(client, alice)
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    out = await client.post("/api/auth/logout", headers=auth)
    assert out.status_code == 204
    assert out.headers["set-cookie"] == f"{COOKIE}=; Max-Age=0; {FLAGS}"
    assert (await _cookie_refresh(client, cookie)).status_code == 401
    body, _ = await _cookie_login(client, alice)
    changed = await client.post(
        "/api/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 42"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert changed.status_code == 204
    assert changed.headers["set-cookie"] == f"{COOKIE}=; Max-Age=0; {FLAGS}"
    async with app.fastapi.state.core.db.read() as session:
        live = await session.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_(None))
        )
    assert live == 0


class TestCorsOrigin:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"server": {"cors_origins": ["https://dash.example"]}}

    async def test_an_allowed_cors_origin_may_refresh_by_cookie(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        _, cookie = await _cookie_login(client, alice)
        assert (await _cookie_refresh(client, cookie, origin="https://dash.example")).status_code == 200
        assert (await _cookie_refresh(client, cookie, origin="https://dash.example.evil")).status_code == 403
