"""Socket.IO on a real uvicorn (websocket transport): token required, rooms checked, revoked sessions dropped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import socketio
from tests.conftest import PASSWORD, live_server

from aaiti.app import create_app
from aaiti.core.clock import FrozenClock
from aaiti.core.config import Settings


async def _account(http: httpx.AsyncClient, email: str) -> dict[str, Any]:
    r = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201
    tokens = (await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()
    return {"id": r.json()["id"], "token": tokens["access_token"]}


async def _connect(base: str, token: str | None) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base, transports=["websocket"], auth={"token": token} if token else None, wait_timeout=10)
    return client


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC))


async def test_socket_auth_rooms_and_revocation(settings: Settings, clock: FrozenClock) -> None:
    asgi = create_app(settings, clock=clock)
    async with live_server(asgi) as base, httpx.AsyncClient(base_url=base) as http:
        alice = await _account(http, "alice@example.com")
        bob = await _account(http, "bob@example.com")
        for token in (None, "garbage", alice["token"] + "x"):
            with pytest.raises(socketio.exceptions.ConnectionError):
                await _connect(base, token)

        a = await _connect(base, alice["token"])
        b = await _connect(base, bob["token"])
        received: dict[str, list[Any]] = {"a": [], "b": []}
        a.on("job_update", lambda data: received["a"].append(data))
        b.on("job_update", lambda data: received["b"].append(data))
        job = (
            await http.post(
                "/api/jobs",
                headers={"Authorization": f"Bearer {alice['token']}"},
                json={"kind": "selftest", "params": {"steps": 2, "step_seconds": 0}},
            )
        ).json()
        assert await a.call("subscribe", {"room": f"job:{job['id']}"}) == {"ok": True, "room": f"job:{job['id']}"}
        assert (await b.call("subscribe", {"room": f"job:{job['id']}"}))["ok"] is False
        assert (await b.call("subscribe", {"room": f"user:{alice['id']}"}))["ok"] is False
        assert (await b.call("subscribe", {"room": "secret:1"}))["ok"] is False
        assert (await b.call("subscribe", {"room": "prices:BTC"}))["ok"] is True
        assert (await b.call("subscribe", "not a dict"))["ok"] is False
        for _ in range(100):
            if any(d["job"]["status"] == "succeeded" for d in received["a"]):
                break
            await asyncio.sleep(0.1)
        assert any(d["job"]["status"] == "succeeded" for d in received["a"])
        assert received["b"] == [], "bob must never see alice's job events"

        # Logout revokes alice's sessions: the sweeper drops her socket; bob stays connected.
        await http.post("/api/auth/logout", headers={"Authorization": f"Bearer {alice['token']}"})
        await asyncio.wait_for(_until(lambda: not a.connected), 10)
        assert b.connected
        # Token expiry: move the clock past bob's access-token lifetime.
        clock.advance(settings.auth.access_ttl_s + 5)
        await asyncio.wait_for(_until(lambda: not b.connected), 10)
        for c in (a, b):
            await c.disconnect()


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


async def test_token_in_query_string_is_refused(settings: Settings) -> None:
    asgi = create_app(settings)
    async with live_server(asgi) as base, httpx.AsyncClient(base_url=base) as http:
        alice = await _account(http, "q@example.com")
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(f"{base}?token={alice['token']}", transports=["websocket"], wait_timeout=10)


def test_frozen_clock_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2026, 1, 1))
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(60)
    assert clock.now() - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(seconds=60)
