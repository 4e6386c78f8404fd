from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import PASSWORD, register


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"auth": {"login_max_per_account": 5, "login_max_per_ip": 8, "login_window_s": 60}}


async def test_login_rate_limited_per_account_and_ip(client: httpx.AsyncClient, app: Any) -> None:
    await register(client, "victim@example.com")
    statuses = []
    for _ in range(6):
        r = await client.post("/api/auth/login", json={"email": "victim@example.com", "password": "wrong guess!"})
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "rate_limited"
    # Same account from another IP: still limited per account (for the window only: 60 s, not hours).
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 1)), base_url="http://t")
    async with other:
        r2 = await other.post("/api/auth/login", json={"email": "victim@example.com", "password": PASSWORD})
        assert r2.status_code == 429
        # A different account from that fresh IP is unaffected.
        await register(other, "fresh@example.com")
        ok = await other.post("/api/auth/login", json={"email": "fresh@example.com", "password": PASSWORD})
        assert ok.status_code == 200
    # Per-IP: the first client has used 6 of its 8; other accounts hit the IP limit next.
    codes = [
        (await client.post("/api/auth/login", json={"email": f"u{i}@example.com", "password": "whatever1"})).status_code
        for i in range(3)
    ]
    assert codes[-1] == 429


async def test_rate_limited_login_is_audited(client: httpx.AsyncClient, app: Any) -> None:
    from sqlalchemy import select

    from aaiti.core.audit import AuditLog

    for _ in range(7):
        await client.post("/api/auth/login", json={"email": "ghost@example.com", "password": "nope nope"})
    async with app.fastapi.state.core.db.read() as session:
        rows = (await session.scalars(select(AuditLog).where(AuditLog.action == "auth.login"))).all()
    assert {r.outcome for r in rows} == {"failed", "denied"}
