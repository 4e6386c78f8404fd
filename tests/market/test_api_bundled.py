"""The bundled history is stored on first start (in the background, batch by batch) and never twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from aaiti.app import create_app
from aaiti.data import bundled_datasets, load_bundled
from aaiti.market.models import Candle
from tests.conftest import PASSWORD, make_settings


async def _wait_loaded(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await client.get("/api/market/status", headers=headers)).json()["bundled"]
        if body["state"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the bundled history did not load within 15 s")


async def _counts(app: Any) -> dict[tuple[str, str, str], int]:
    async with app.fastapi.state.core.db.read() as session:
        rows = await session.execute(
            select(Candle.source, Candle.symbol, Candle.timeframe, func.count()).group_by(
                Candle.source, Candle.symbol, Candle.timeframe
            )
        )
        return {(s, sym, tf): n for s, sym, tf, n in rows.all()}


class LoopWatch:
    """Measures the longest stall of the event loop (how late a 10 ms sleep wakes up)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, loop.time() - before - 0.01)

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _start(
    tmp_path: Path, db_path: Path, login: bool
) -> tuple[dict[str, Any], dict[tuple[str, str, str], int], float]:
    settings = make_settings(tmp_path, db_path, market={"load_bundled": True})
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            if login:
                r = await client.post("/api/auth/register", json={"email": "ann@example.com", "password": PASSWORD})
                assert r.status_code == 201
            tokens = await client.post("/api/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            with LoopWatch() as watch:
                report = await _wait_loaded(client, headers)
            candles = await client.get(
                "/api/market/candles", params={"symbol": "LTC", "timeframe": "1d", "limit": 3}, headers=headers
            )
            assert candles.status_code == 200 and candles.json()["source"] == "bundled:bitstamp"
            return report, await _counts(app), watch.worst


@pytest.mark.timeout(120)
async def test_bundled_history_loads_once(tmp_path: Path, db_path: Path) -> None:
    first, counts, stall = await _start(tmp_path, db_path, login=True)
    expected = {(f"bundled:{d.exchange}", d.symbol, d.timeframe): len(load_bundled(d.name)) for d in bundled_datasets()}
    assert first["state"] == "done", first
    assert first["datasets"] == len(expected) == 6
    assert counts == expected
    assert first["rows_written"] == sum(expected.values())
    assert stall < 0.5, f"the load stalled the event loop for {stall:.3f} s"

    second, again, _ = await _start(tmp_path, db_path, login=False)
    assert second["state"] == "done" and second["rows_written"] == 0, "the second start stores nothing"
    assert again == expected
