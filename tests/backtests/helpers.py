"""Shared helpers of the backtest tests: request bodies on the bundled real data, and waiting for jobs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.conftest import Account

# Bitstamp daily BTC candles ship with the package (2014-11-28 .. 2020-01-17).
YEAR_2017 = {"start": "2017-01-01T00:00:00Z", "end": "2018-01-01T00:00:00Z"}


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbols": ["BTC"],
        "timeframe": "1d",
        **YEAR_2017,
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 30},
        "config": {"fees": {"taker_bps": 10}},
    }
    base.update(overrides)
    return base


async def wait_job(
    client: httpx.AsyncClient, account: Account, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/jobs/{job_id}", headers=account.headers)).json()
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


async def run_to_completion(client: httpx.AsyncClient, account: Account, payload: dict[str, Any]) -> dict[str, Any]:
    """POST a run, wait for its job to succeed, return the stored detail."""
    r = await client.post("/api/backtests", headers=account.headers, json=payload)
    assert r.status_code == 202, r.text
    job = await wait_job(client, account, r.json()["job_id"], {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job
    d = await client.get(r.json()["links"]["backtest"], headers=account.headers)
    assert d.status_code == 200, d.text
    return d.json()  # type: ignore[no-any-return]
