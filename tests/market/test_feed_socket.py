"""The live feed on a real uvicorn over the websocket transport, fed by replay: price_update with increasing seq,
the snapshot room, room validation, unsubscribe, and the stale flag (socket, REST, status, readiness) when the
source stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import socketio

from aaiti.app import create_app
from aaiti.core.config import Settings
from aaiti.core.errors import Unavailable
from aaiti.market.provider import PriceQuote
from tests.conftest import PASSWORD, live_server

FAST_REPLAY = {"market": {"poll_interval_s": 0.1, "replay_bar_seconds": 0.05}}


async def login(http: httpx.AsyncClient, email: str) -> dict[str, Any]:
    r = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    tokens = (await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()
    return {"id": r.json()["id"], "token": tokens["access_token"]}


async def connect(base: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base, transports=["websocket"], auth={"token": token}, wait_timeout=10)
    return client


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


@pytest.mark.parametrize("settings_overrides", [FAST_REPLAY])
async def test_replay_prices_stream_and_turn_stale_when_the_source_stops(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asgi = create_app(settings)
    async with live_server(asgi) as base, httpx.AsyncClient(base_url=base) as http:
        user = await login(http, "stream@example.com")
        headers = {"Authorization": f"Bearer {user['token']}"}
        sock = await connect(base, user["token"])
        prices: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        sock.on("price_update", prices.append)
        sock.on("market_data_update", snapshots.append)
        try:
            for room in ("prices:btc", "prices:DOGE", "prices:", "market:everything"):
                assert (await sock.call("subscribe", {"room": room}))["ok"] is False, room
            assert await sock.call("subscribe", {"room": "prices:BTC"}) == {"ok": True, "room": "prices:BTC"}
            assert (await sock.call("subscribe", {"room": "market:snapshot"}))["ok"] is True
            await until(lambda: len(prices) >= 6 and len(snapshots) >= 1)

            assert {p["symbol"] for p in prices} == {"BTC"}, "only the subscribed symbol"
            assert all(p["source"] == "replay" and p["stale"] is False for p in prices)
            seqs = [p["seq"] for p in prices]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            assert len({p["price"] for p in prices}) > 1, "a fast replay moves the price"
            assert {"items", "as_of", "source", "seq"} <= set(snapshots[0])
            assert {i["symbol"] for i in snapshots[0]["items"]} == {"BTC", "ETH", "LTC"}

            # The source stops: the last good price turns stale everywhere, with its original as_of.
            runtime = asgi.fastapi.state.market

            async def down(_symbols: Any) -> dict[str, PriceQuote]:
                raise Unavailable("replay source stopped")

            monkeypatch.setattr(runtime.sources.replay, "prices", down)
            await until(lambda: prices[-1]["stale"] is True)
            last_good = next(p for p in reversed(prices) if not p["stale"])
            assert (prices[-1]["price"], prices[-1]["as_of"]) == (last_good["price"], last_good["as_of"])
            assert prices[-1]["seq"] > last_good["seq"]
            rest = (await http.get("/api/market/prices", params={"symbols": "BTC"}, headers=headers)).json()
            assert rest["items"][0]["stale"] is True and rest["items"][0]["price"] == last_good["price"]
            status = (await http.get("/api/market/status", headers=headers)).json()
            assert status["stale"] is True and "replay source stopped" in status["last_error"]
            ready = await http.get("/api/health/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["market"]["ok"] is False

            monkeypatch.undo()
            await until(lambda: prices[-1]["stale"] is False)
            assert (await http.get("/api/health/ready")).status_code == 200

            assert (await sock.call("unsubscribe", {"room": "prices:BTC"}))["ok"] is True
            await asyncio.sleep(0.15)
            count = len(prices)
            await asyncio.sleep(0.4)
            assert len(prices) == count, "no updates after unsubscribe"
        finally:
            await sock.disconnect()
