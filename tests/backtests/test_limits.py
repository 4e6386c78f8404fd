"""Job limits: the per-user cap answers 429 before any data is loaded, and a cancelled run stores nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from aaiti.backtests.models import Backtest, BacktestTrade
from tests.backtests.helpers import body, wait_job
from tests.conftest import Account


async def _count(app: Any, model: Any) -> int:
    async with app.fastapi.state.core.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jobs": {"workers": 1, "max_concurrent_per_user": 1}}


async def test_cap_429_and_cancel_stores_nothing(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    # A large sweep on hourly data: long enough to cancel while it runs.
    slow = body(
        timeframe="1h",
        start="2019-01-01T00:00:00Z",
        end="2020-01-01T00:00:00Z",
        kind="sweep",
        sweep={"grid": {"fast": list(range(2, 42)), "slow": list(range(50, 100))}},
    )
    r = await client.post("/api/backtests", headers=alice.headers, json=slow)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    over = await client.post("/api/backtests", headers=alice.headers, json=body())
    assert over.status_code == 429 and "retry-after" in over.headers
    await wait_job(client, alice, job_id, {"running"})
    for _ in range(200):
        job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
        if job["progress"] > 0.05:
            break
        await asyncio.sleep(0.05)
    assert (await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)).status_code == 200
    job = await wait_job(client, alice, job_id, {"cancelled", "succeeded", "failed"}, timeout=30)
    assert job["status"] == "cancelled", job
    assert 0 < job["progress"] < 1
    assert await _count(app, Backtest) == 0 and await _count(app, BacktestTrade) == 0
