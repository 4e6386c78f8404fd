from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select
from tests.conftest import PASSWORD, Account

from aaiti.core.audit import AuditLog


async def _audit_rows(app: Any) -> list[AuditLog]:
    async with app.fastapi.state.core.db.read() as session:
        return list((await session.scalars(select(AuditLog).order_by(AuditLog.timestamp))).all())


async def test_mutations_are_audited_without_secrets(
    client: httpx.AsyncClient, app: Any, alice: Account, admin: Account
) -> None:
    await client.post("/api/auth/login", json={"email": alice.email, "password": "definitely wrong"})
    await client.put("/api/settings/coingecko.api_key", headers=admin.headers, json={"value": "CG-supersecretkey1"})
    await client.put("/api/settings/ui.announcement", headers=admin.headers, json={"value": "maintenance at 5"})
    await client.patch(f"/api/users/{alice.id}", headers=admin.headers, json={"role": "viewer"})
    await client.post(
        "/api/auth/change-password",
        headers=admin.headers,
        json={"current_password": PASSWORD, "new_password": "new secret value 9"},
    )
    rows = await _audit_rows(app)
    actions = [(r.action, r.outcome) for r in rows]
    for expected in [
        ("auth.register", "success"),
        ("auth.login", "success"),
        ("auth.login", "failed"),
        ("settings.update", "success"),
        ("users.update", "success"),
        ("auth.change_password", "success"),
    ]:
        assert expected in actions, expected
    blob = json.dumps([[r.details, r.user_agent, r.resource_id] for r in rows], default=str)
    for secret in (
        PASSWORD,
        "definitely wrong",
        "CG-supersecretkey1",
        "new secret value 9",
        alice.refresh,
        alice.access,
    ):
        assert secret not in blob
    login_row = next(r for r in rows if r.action == "auth.login" and r.outcome == "success")
    assert login_row.ip_address == "127.0.0.1"
    assert login_row.request_id


async def test_audit_log_endpoint_scoping(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    mine = (await client.get("/api/audit-logs", headers=alice.headers)).json()
    assert mine["total"] >= 2
    assert {item["user_id"] for item in mine["items"]} == {alice.id}
    everyone = (await client.get("/api/audit-logs?limit=200", headers=admin.headers)).json()
    assert {alice.id, bob.id} <= {item["user_id"] for item in everyone["items"]}
    only_bob = (await client.get(f"/api/audit-logs?user_id={bob.id}", headers=admin.headers)).json()
    assert {item["user_id"] for item in only_bob["items"]} == {bob.id}
    ignored = (await client.get(f"/api/audit-logs?user_id={bob.id}", headers=alice.headers)).json()
    assert {item["user_id"] for item in ignored["items"]} == {alice.id}, "non-admins only ever see their own"
    filtered = (await client.get("/api/audit-logs?action=auth.login&limit=1", headers=alice.headers)).json()
    assert len(filtered["items"]) == 1 and filtered["items"][0]["action"] == "auth.login"
    assert (await client.get("/api/audit-logs?limit=100000", headers=alice.headers)).status_code == 422
    naive = await client.get("/api/audit-logs?since=2026-01-01T00:00:00", headers=alice.headers)
    assert naive.status_code == 422


async def test_settings_api(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    put = await client.put("/api/settings/coingecko.api_key", headers=admin.headers, json={"value": "CG-abcdefgh123"})
    assert put.status_code == 200
    assert put.json()["value"] is None and put.json()["secret"] is True
    for who in (alice, admin):
        listing = (await client.get("/api/settings", headers=who.headers)).json()
        key = next(s for s in listing if s["key"] == "coingecko.api_key")
        assert key["is_set"] is True and key["value"] is None
        assert "CG-abcdefgh123" not in json.dumps(listing)
    bad = await client.put("/api/settings/ui.announcement", headers=admin.headers, json={"value": "x" * 501})
    assert bad.status_code == 422
    wrong_type = await client.put("/api/settings/registration.open", headers=admin.headers, json={"value": "yes"})
    assert wrong_type.status_code == 422
    unknown = await client.put("/api/settings/no.such.key", headers=admin.headers, json={"value": 1})
    assert unknown.status_code == 422
    ok = await client.put("/api/settings/ui.announcement", headers=admin.headers, json={"value": "maintenance at 5"})
    assert ok.json()["value"] == "maintenance at 5"
    assert (
        await client.put("/api/settings/ui.announcement", headers=alice.headers, json={"value": "x"})
    ).status_code == 403


async def test_user_admin(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    users = (await client.get("/api/users", headers=admin.headers)).json()
    assert users["total"] == 2
    assert all("password_hash" not in u for u in users["items"])
    off = await client.patch(f"/api/users/{alice.id}", headers=admin.headers, json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 401
    relog = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert relog.status_code == 401
    self_demote = await client.patch(f"/api/users/{admin.id}", headers=admin.headers, json={"role": "trader"})
    assert self_demote.status_code == 409, "the last active admin cannot be removed"
    assert (
        await client.patch(f"/api/users/{alice.id}", headers=admin.headers, json={"password_hash": "x"})
    ).status_code == 422


async def test_registration_switch_applies_at_once(client: httpx.AsyncClient, admin: Account) -> None:
    closed = await client.put("/api/settings/registration.open", headers=admin.headers, json={"value": False})
    assert closed.status_code == 200
    r = await client.post("/api/auth/register", json={"email": "late@example.com", "password": PASSWORD})
    assert r.status_code == 403 and "closed" in r.json()["detail"]
    await client.put("/api/settings/registration.open", headers=admin.headers, json={"value": True})
    assert (
        await client.post("/api/auth/register", json={"email": "late@example.com", "password": PASSWORD})
    ).status_code == 201
