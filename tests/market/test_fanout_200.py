"""Acceptance: 200 Socket.IO clients (websocket transport) on a real uvicorn fed by replay. Every client receives the
prices it subscribed to and nothing else, with increasing sequence numbers, and no user can join or see another
user's room.

Ten users with twenty sockets each keep the argon2 logins cheap; socket ``k`` subscribes to the ``k % 7 + 1``-th
non-empty subset of {BTC, ETH, LTC}, so every subset is exercised by many clients at once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import Any

import httpx
import pytest
import socketio

from aaiti.app import create_app
from aaiti.core.config import Settings
from tests.conftest import live_server
from tests.market.test_feed_socket import login

USERS = 10
SOCKETS_PER_USER = 20
SYMBOLS = ("BTC", "ETH", "LTC")
SUBSETS = [frozenset(c) for n in (1, 2, 3) for c in itertools.combinations(SYMBOLS, n)]  # the seven non-empty subsets
UPDATES_WANTED = 3


class Client:
    def __init__(self, user: dict[str, Any], index: int) -> None:
        self.user = user
        self.symbols = SUBSETS[index % len(SUBSETS)]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.sio.on("*", self._any)

    async def _any(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    def prices(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event, data in self.events:
            if event == "price_update":
                out[data["symbol"]].append(data)
        return out

    def satisfied(self) -> bool:
        got = self.prices()
        return all(len(got[s]) >= UPDATES_WANTED for s in self.symbols)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("settings_overrides", [{"market": {"poll_interval_s": 0.25, "replay_bar_seconds": 0.05}}])
async def test_200_clients_get_exactly_their_prices_and_only_their_user_room(settings: Settings) -> None:
    asgi = create_app(settings)
    async with live_server(asgi) as base, httpx.AsyncClient(base_url=base) as http:
        users = [await login(http, f"fan{i}@example.com") for i in range(USERS)]
        clients = [Client(u, k) for u in users for k in range(SOCKETS_PER_USER)]
        gate = asyncio.Semaphore(40)

        async def start(c: Client) -> None:
            async with gate:
                await c.sio.connect(base, transports=["websocket"], auth={"token": c.user["token"]}, wait_timeout=20)
                for symbol in sorted(c.symbols):
                    ack = await c.sio.call("subscribe", {"room": f"prices:{symbol}"}, timeout=20)
                    assert ack == {"ok": True, "room": f"prices:{symbol}"}
                other = users[(users.index(c.user) + 1) % USERS]
                refused = await c.sio.call("subscribe", {"room": f"user:{other['id']}"}, timeout=20)
                assert refused["ok"] is False, "another user's room must not be joinable"

        try:
            await asyncio.gather(*(start(c) for c in clients))
            assert asgi.fastapi.state.gateway.connection_count == USERS * SOCKETS_PER_USER

            async def all_satisfied() -> None:
                while not all(c.satisfied() for c in clients):
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(all_satisfied(), 60)

            # A private event per user room: each socket must see its own user's note and nobody else's.
            gateway = asgi.fastapi.state.gateway
            for u in users:
                await gateway.publish("private_note", {"user": u["id"]}, f"user:{u['id']}")

            async def notes_arrived() -> None:
                while not all(any(e == "private_note" for e, _ in c.events) for c in clients):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(notes_arrived(), 30)
            await asyncio.sleep(0.3)  # let any stray delivery land before checking

            for c in clients:
                got = c.prices()
                assert set(got) == set(c.symbols), (sorted(c.symbols), sorted(got))
                for symbol, updates in got.items():
                    seqs = [u["seq"] for u in updates]
                    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (symbol, seqs)
                    assert all(u["source"] == "replay" and u["symbol"] == symbol for u in updates)
                notes = [d for e, d in c.events if e == "private_note"]
                assert notes == [{"user": c.user["id"]}], notes
                unexpected = {e for e, _ in c.events} - {"price_update", "private_note"}
                assert not unexpected, unexpected
        finally:
            await asyncio.gather(*(c.sio.disconnect() for c in clients), return_exceptions=True)
