"""RELIABILITY LOG-01/02/04/06 and TOK-08: security events are logged once each, with who, where and what came
of it; logs never carry secrets; a failing check fails closed; metric labels stay bounded."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from tests.conftest import PASSWORD, Account

from aaiti.auth.models import User
from aaiti.auth.service import AuthService
from aaiti.core.audit import AuditContext, Outcome, record_audit


class Captured(logging.Handler):
    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self, event: str) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines]
        return [p for p in parsed if p.get("event") == event]


@pytest.fixture
def captured(app: Any) -> Iterator[Captured]:
    """The app's own JSON log lines at INFO (create_app configured the root handler's formatter)."""
    root = logging.getLogger()
    handler = Captured(root.handlers[0].formatter if root.handlers else None)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _one(events: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [e for e in events if all(e.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one event with {match}, got {found}"
    return found[0]


async def test_security_events_are_logged_once_each(
    client: httpx.AsyncClient, app: Any, alice: Account, admin: Account, captured: Captured
) -> None:
    assert (
        await client.post("/api/auth/login", json={"email": alice.email, "password": "wrong password"})
    ).status_code == 401
    ok = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    rotated = await client.post("/api/auth/refresh", json={"refresh_token": ok.json()["refresh_token"]})
    assert rotated.status_code == 200
    assert (
        await client.post("/api/auth/refresh", json={"refresh_token": ok.json()["refresh_token"]})
    ).status_code == 401
    alice_now = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    alice_headers = {"Authorization": f"Bearer {alice_now.json()['access_token']}"}
    assert (await client.get("/api/users", headers=alice_headers)).status_code == 403
    assert (await client.post("/api/auth/register", json={"email": "x"})).status_code == 422
    patched = await client.patch(f"/api/users/{alice.id}", json={"role": "viewer"}, headers=admin.headers)
    assert patched.status_code == 200

    audit = captured.events("security_event")
    failed = _one(audit, action="auth.login", outcome="failed")
    assert (failed["actor_id"], failed["client_ip"]) == (alice.id, "127.0.0.1")
    assert failed["request_id"] and failed["audit_seq"] >= 1
    assert failed["timestamp"].endswith("Z")
    assert len([e for e in audit if e["action"] == "auth.login" and e["outcome"] == "success"]) == 2
    reuse = _one(audit, action="auth.refresh_reuse")
    assert (reuse["outcome"], reuse["actor_id"]) == ("denied", alice.id)
    change = _one(audit, action="users.update")
    assert (change["actor_id"], change["resource_id"], change["outcome"]) == (admin.id, alice.id, "success")
    assert all("details" not in e for e in audit), "details may quote user input: they stay in the database"

    http = captured.events("http_request")
    login_refused = [e for e in http if e["route"] == "/api/auth/login" and e["status"] == 401]
    assert len(login_refused) == 1
    assert login_refused[0]["security_event"] == "authentication_failed"
    assert login_refused[0]["client_ip"] == "127.0.0.1"
    forbidden = _one(http, route="/api/users", status=403)
    assert (forbidden["security_event"], forbidden["user_id"]) == ("authorization_failed", alice.id)
    invalid = _one(http, route="/api/auth/register", status=422)
    assert invalid["security_event"] == "validation_failed"
    assert all(e.get("request_id") for e in http)


class TestRateLimitIsLogged:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"auth": {"login_max_per_account": 2}}

    async def test_rate_limit_hit_is_a_security_event(
        self, client: httpx.AsyncClient, alice: Account, captured: Captured
    ) -> None:
        statuses = [
            (
                await client.post("/api/auth/login", json={"email": alice.email, "password": "wrong password"})
            ).status_code
            for _ in range(3)
        ]
        # the fixture's own login used one of the two allowed attempts
        assert statuses == [401, 429, 429]
        limited = [e for e in captured.events("http_request") if e["status"] == 429]
        assert len(limited) == 2
        assert all((e["security_event"], e["client_ip"]) == ("rate_limited", "127.0.0.1") for e in limited)
        denied = [e for e in captured.events("security_event") if e["outcome"] == "denied"]
        assert [e["action"] for e in denied] == ["auth.login", "auth.login"]


async def test_logs_carry_no_secrets(
    client: httpx.AsyncClient, alice: Account, admin: Account, captured: Captured
) -> None:
    new_password = "another long passphrase 51"
    cookie_login = await client.post(
        "/api/auth/login", json={"email": alice.email, "password": PASSWORD, "refresh_cookie": True}
    )
    cookie = cookie_login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    body_login = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    tokens = body_login.json()
    await client.get(f"/api/auth/me?token={tokens['access_token']}")  # TOK-08: a token in the URL is refused
    await client.post(
        "/api/auth/change-password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    await client.post("/api/auth/login", json={"email": alice.email, "password": "wrong " + new_password})
    await client.put(
        "/api/settings/coingecko.api_key", json={"value": "CG-secretkeyvalue123456"}, headers=admin.headers
    )
    text = "\n".join(captured.lines)
    assert captured.lines, "nothing was captured: the test would prove nothing"
    for secret in (PASSWORD, new_password, tokens["access_token"], tokens["refresh_token"], cookie, "CG-secretkey"):
        assert secret not in text
    assert "eyJ" not in text, "no JWT (header or payload) in any log line"


async def test_a_rolled_back_audit_row_is_not_logged(app: Any, captured: Captured) -> None:
    db = app.fastapi.state.core.db
    async with db.unit_of_work() as uow:
        record_audit(uow.session, AuditContext(ip_address="192.0.2.1"), "test.rolled_back")
        await uow.session.flush()
        await uow.rollback()
    async with db.unit_of_work() as uow:
        async with uow.session.begin_nested() as savepoint:
            record_audit(uow.session, AuditContext(), "test.in_savepoint")
            await uow.session.flush()
            await savepoint.rollback()
        record_audit(uow.session, AuditContext(), "test.kept", outcome=Outcome.success)
        await uow.commit()
    actions = [e["action"] for e in captured.events("security_event")]
    assert actions == ["test.kept"]


async def test_a_failing_authentication_check_fails_closed(
    client: httpx.AsyncClient, app: Any, alice: Account, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOG-04: an exception inside the check answers 500 and the action does not happen."""

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the token-version lookup blew up")

    monkeypatch.setattr(AuthService, "authenticate", broken)
    res = await client.patch(f"/api/users/{alice.id}", json={"role": "viewer"}, headers=admin.headers)
    assert res.status_code == 500
    assert "blew up" not in res.text
    async with app.fastapi.state.core.db.read() as session:
        assert await session.scalar(select(User.role).where(User.email == alice.email)) == "trader"


def _series(name: str) -> int:
    return sum(len(metric.samples) for metric in REGISTRY.collect() if metric.name == name)


async def test_random_urls_do_not_grow_the_metric_series(client: httpx.AsyncClient, alice: Account) -> None:
    """LOG-06: labels are route templates; unknown paths share one "unmatched" series per method and status."""
    await client.get("/api/no-such-thing")
    await client.get(f"/api/jobs/{secrets.token_hex(4)}", headers=alice.headers)
    before = _series("http_requests")
    for _ in range(10_000):
        await client.get(f"/api/{secrets.token_hex(6)}/{secrets.token_hex(3)}")
    for _ in range(200):
        await client.get(f"/api/jobs/{secrets.token_hex(4)}", headers=alice.headers)
    assert _series("http_requests") == before
