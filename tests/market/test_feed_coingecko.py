"""CoinGecko as the live source, end to end: the app on a real uvicorn polls the fake CoinGecko (real HTTP), serves
its prices over REST and Socket.IO with ``source="coingecko"``, keeps upstream calls independent of the number of
subscribers, and during a long outage serves the last good price flagged stale, with the open breaker visible in
/api/market/status and /api/health/ready."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from aaiti.app import create_app
from aaiti.core.clock import SystemClock
from tests.conftest import live_server, make_settings
from tests.fakes.coingecko import running_fake
from tests.market.test_feed_socket import connect, login, until

SP = "/simple/price"


@pytest.mark.timeout(120)
async def test_coingecko_prices_over_rest_and_socket_then_a_long_outage(tmp_path: Path, db_path: Path) -> None:
    async with running_fake(SystemClock()) as fake:
        settings = make_settings(
            tmp_path,
            db_path,
            market={
                "source": "coingecko",
                "coingecko_base_url": fake.base_url,
                "poll_interval_s": 0.2,
                "calls_per_minute": 600,
            },
        )
        asgi = create_app(settings)
        async with live_server(asgi) as base, httpx.AsyncClient(base_url=base) as http:
            user = await login(http, "gecko@example.com")
            headers = {"Authorization": f"Bearer {user['token']}"}

            async def rest_prices() -> httpx.Response:
                return await http.get("/api/market/prices", params={"symbols": "BTC,ETH"}, headers=headers)

            await until(lambda: fake.count(SP) >= 1)
            for _ in range(100):
                r = await rest_prices()
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            items = {p["symbol"]: p for p in r.json()["items"]}
            assert (items["BTC"]["price"], items["BTC"]["source"], items["BTC"]["stale"]) == (
                31723.09,
                "coingecko",
                False,
            )
            assert items["ETH"]["price"] == 1898.28

            socks = [await connect(base, user["token"]) for _ in range(5)]
            received: list[list[dict[str, Any]]] = [[] for _ in socks]
            for sock, box in zip(socks, received, strict=True):
                sock.on("price_update", box.append)
                assert (await sock.call("subscribe", {"room": "prices:BTC"}))["ok"] is True
            try:
                fake.set_price("bitcoin", 32000.0, 1.5)
                await until(lambda: all(box and box[-1]["price"] == 32000.0 for box in received))
                for box in received:
                    assert box[-1]["source"] == "coingecko" and box[-1]["change_24h_pct"] == 1.5
                    assert box[-1]["stale"] is False

                # Fan-in: one poller, at most one /simple/price call per poll, however many sockets listen.
                runtime = asgi.fastapi.state.market
                calls, polls = fake.count(SP), runtime.feed.polls
                await asyncio.sleep(1.0)
                assert fake.count(SP) - calls <= runtime.feed.polls - polls + 1
                status = (await http.get("/api/market/status", headers=headers)).json()
                assert (status["source"], status["mode"], status["breaker_state"]) == (
                    "coingecko",
                    "coingecko",
                    "closed",
                )
                assert status["budget_limit"] == 600 and 0 < status["budget_used"] <= 600
                assert status["detail"]["host"].startswith("127.0.0.1:")

                # A long outage: never an invented price, stale everywhere, the breaker opens.
                fake.outage = True
                await until(lambda: all(box[-1]["stale"] is True for box in received), timeout=30)
                for box in received:
                    assert (box[-1]["price"], box[-1]["source"]) == (32000.0, "coingecko")
                r = await rest_prices()
                assert r.status_code == 200
                assert {p["symbol"]: (p["price"], p["stale"]) for p in r.json()["items"]} == {
                    "BTC": (32000.0, True),
                    "ETH": (1898.28, True),
                }

                async def breaker() -> str:
                    return str((await http.get("/api/market/status", headers=headers)).json()["breaker_state"])

                for _ in range(300):
                    if await breaker() == "open":
                        break
                    await asyncio.sleep(0.1)
                status = (await http.get("/api/market/status", headers=headers)).json()
                assert status["breaker_state"] == "open" and status["stale"] is True
                assert status["last_error"]
                ready = await http.get("/api/health/ready")
                assert ready.status_code == 503
                market = ready.json()["checks"]["market"]
                assert (market["ok"], market["source"], market["stale"]) == (False, "coingecko", True)
                while_open = fake.count()
                await asyncio.sleep(1.0)
                assert fake.count() == while_open, "no upstream calls while the breaker is open"
            finally:
                for sock in socks:
                    await sock.disconnect()
