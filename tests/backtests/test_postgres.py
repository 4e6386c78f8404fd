"""Backtests on PostgreSQL (JSONB results, metric sort through ``#>>``, trades, delete), like the core PG leg."""

from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from aaiti.app import create_app
from tests.backtests.helpers import body, run_to_completion
from tests.conftest import PASSWORD, Account, make_settings


async def test_backtests_on_postgres(pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tmp_path / "unused.db", database={"url": pg_url})
    asgi = create_app(settings)
    async with (
        LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=("127.0.0.1", 1)), base_url="http://t") as c,
    ):
        assert (await c.post("/api/auth/register", json={"email": "pg@example.com", "password": PASSWORD})).is_success
        tokens = (await c.post("/api/auth/login", json={"email": "pg@example.com", "password": PASSWORD})).json()
        me = Account("", "pg@example.com", PASSWORD, tokens["access_token"], tokens["refresh_token"], "trader")
        slow = await run_to_completion(c, me, body())
        fast = await run_to_completion(c, me, body(params={"fast": 5, "slow": 20}))
        assert slow["trades"]["total"] == slow["num_trades"] > 0
        assert slow["initial_capital"] == "10000"
        for order in ("asc", "desc"):
            items = (await c.get(f"/api/backtests?sort=sharpe&order={order}", headers=me.headers)).json()["items"]
            sharpe = [i["headline"]["sharpe"]["value"] for i in items]
            assert sharpe == sorted(sharpe, reverse=order == "desc") and len(sharpe) == 2
        assert (await c.delete(f"/api/backtests/{fast['id']}", headers=me.headers)).status_code == 204
        assert (await c.get("/api/backtests", headers=me.headers)).json()["total"] == 1
