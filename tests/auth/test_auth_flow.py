from __future__ import annotations

import statistics
import time

import httpx
from sqlalchemy import select
from tests.conftest import PASSWORD, Account, login, register

from aaiti.auth.models import RefreshToken, User


async def test_register_login_me(client: httpx.AsyncClient, app: object) -> None:
    user = await register(client, "Carol@Example.com")
    assert user["email"] == "carol@example.com"
    assert user["role"] == "trader"
    assert "password_hash" not in user
    tokens = await login(client, "carol@example.com")
    assert tokens["token_type"] == "bearer"
    assert 0 < tokens["expires_in"] <= 900
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "carol@example.com"
    assert me.json()["last_login"] is not None


async def test_password_stored_as_argon2id(client: httpx.AsyncClient, app: object, alice: Account) -> None:
    async with app.fastapi.state.core.db.read() as session:  # type: ignore[attr-defined]
        stored = await session.scalar(select(User.password_hash).where(User.email == alice.email))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=")


async def test_oauth2_form_login(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post("/api/auth/token", data={"username": alice.email, "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["access_token"]


async def test_unknown_user_and_wrong_password_answer_identically(client: httpx.AsyncClient, alice: Account) -> None:
    wrong = await client.post("/api/auth/login", json={"email": alice.email, "password": "not the password"})
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "whatever12"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "unauthorized", "detail": "invalid email or password"}


async def test_password_rules(client: httpx.AsyncClient) -> None:
    short = await client.post("/api/auth/register", json={"email": "a@example.com", "password": "seven77"})
    assert short.status_code == 422
    too_long = await client.post("/api/auth/register", json={"email": "a@example.com", "password": "x" * 129})
    assert too_long.status_code == 422
    huge = await client.post("/api/auth/register", json={"email": "a@example.com", "password": "x" * 900_000})
    assert huge.status_code == 422
    common = await client.post("/api/auth/register", json={"email": "a@example.com", "password": "password123"})
    assert common.status_code == 422
    assert "common" in common.json()["detail"]
    as_email = await client.post("/api/auth/register", json={"email": "longname@example.com", "password": "longname"})
    assert as_email.status_code == 422


async def test_password_used_exactly_as_typed(client: httpx.AsyncClient) -> None:
    # 64 two-byte characters (128 UTF-8 bytes, beyond bcrypt's 72): no truncation, no normalisation.
    password = "é" * 63 + "ß"
    await register(client, "utf@example.com", password)
    assert (
        await client.post("/api/auth/login", json={"email": "utf@example.com", "password": password})
    ).status_code == 200
    changed_last = "é" * 63 + "s"
    r = await client.post("/api/auth/login", json={"email": "utf@example.com", "password": changed_last})
    assert r.status_code == 401
    padded = await client.post("/api/auth/login", json={"email": "utf@example.com", "password": password + " "})
    assert padded.status_code == 401


async def test_duplicate_email_conflicts(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post("/api/auth/register", json={"email": alice.email.upper(), "password": "another pass 1"})
    assert r.status_code == 409


async def test_mass_assignment_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json={"email": "m@example.com", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 422
    assert (
        await client.post("/api/auth/login", json={"email": "m@example.com", "password": PASSWORD})
    ).status_code == 401


async def test_refresh_rotates_and_reuse_revokes_family(client: httpx.AsyncClient, alice: Account, app: object) -> None:
    first = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh})
    assert first.status_code == 200
    r2 = first.json()["refresh_token"]
    assert r2 != alice.refresh
    reuse = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh})
    assert reuse.status_code == 401
    after = await client.post("/api/auth/refresh", json={"refresh_token": r2})
    assert after.status_code == 401, "the whole family must be revoked after reuse"
    async with app.fastapi.state.core.db.read() as session:  # type: ignore[attr-defined]
        rows = (await session.scalars(select(RefreshToken))).all()
    assert rows and all(row.token_hash not in {alice.refresh, r2} for row in rows), "tokens are stored hashed"


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post("/api/auth/refresh", json={"refresh_token": alice.access})
    assert r.status_code == 401
    r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {alice.refresh}"})
    assert r.status_code == 401


async def test_logout_invalidates_access_and_refresh(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await client.post("/api/auth/logout", headers=alice.headers)).status_code == 204
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 401
    assert (await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh})).status_code == 401


async def test_change_password(client: httpx.AsyncClient, alice: Account) -> None:
    bad = await client.post(
        "/api/auth/change-password",
        headers=alice.headers,
        json={"current_password": "wrong wrong", "new_password": "a brand new secret"},
    )
    assert bad.status_code == 403
    ok = await client.post(
        "/api/auth/change-password",
        headers=alice.headers,
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
    )
    assert ok.status_code == 204
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 401
    assert (await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh})).status_code == 401
    old = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert old.status_code == 401
    await login(client, alice.email, "a brand new secret")


async def test_unknown_user_and_wrong_password_take_similar_time(client: httpx.AsyncClient, alice: Account) -> None:
    """AUTH-05: an unknown email is verified against a dummy argon2 hash, so timing does not reveal accounts.
    Alternating attempts, compared by median (robust to a stray slow request)."""
    wrong: list[float] = []
    unknown: list[float] = []
    for i in range(30):
        for email, bucket in ((alice.email, wrong), (f"nobody{i}@example.com", unknown)):
            started = time.perf_counter()
            res = await client.post("/api/auth/login", json={"email": email, "password": "not the password"})
            bucket.append(time.perf_counter() - started)
            assert res.status_code == 401
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.8 < ratio < 1.25, f"unknown/wrong median latency ratio {ratio:.2f}"
