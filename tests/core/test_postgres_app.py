"""The same app on PostgreSQL (asyncpg), selected by URL alone: accounts, tokens, audit and jobs work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from tests.conftest import PASSWORD, make_settings

from aaiti.app import create_app


async def test_auth_audit_and_jobs_on_postgres(pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tmp_path / "unused.db", database={"url": pg_url})
    asgi = create_app(settings)
    async with (
        LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi, client=("127.0.0.1", 1)), base_url="http://t"
        ) as client,
    ):
        r = await client.post("/api/auth/register", json={"email": "pg@example.com", "password": PASSWORD})
        assert r.status_code == 201, r.text
        tokens = (await client.post("/api/auth/login", json={"email": "pg@example.com", "password": PASSWORD})).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = (await client.get("/api/auth/me", headers=headers)).json()
        assert me["email"] == "pg@example.com" and me["created_at"].endswith(("Z", "+00:00"))
        rotated = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200
        assert (
            await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 401
        job = (
            await client.post(
                "/api/jobs", headers=headers, json={"kind": "selftest", "params": {"steps": 2, "step_seconds": 0}}
            )
        ).json()
        for _ in range(200):
            status = (await client.get(f"/api/jobs/{job['id']}", headers=headers)).json()["status"]
            if status == "succeeded":
                break
            await asyncio.sleep(0.1)
        assert status == "succeeded"
        logs = (await client.get("/api/audit-logs", headers=headers)).json()
        assert {"auth.register", "auth.login", "jobs.submit"} <= {i["action"] for i in logs["items"]}
        assert (await client.get("/api/health/ready")).json()["checks"]["database"]["detail"].startswith("postgresql")
