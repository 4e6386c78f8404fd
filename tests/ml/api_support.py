"""Helpers shared by the /api/models tests (tests/ml/test_api_*.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from aaiti.core.realtime.publisher import RecordingPublisher
from aaiti.data import load_bundled
from tests.conftest import Account

DAILY = load_bundled("BTC-USD_1d")
END_400 = int(DAILY.ts[399])
"""Open time of the 400th daily candle: models train on bars 0..399 to keep the tests fast."""


def body(**overrides: Any) -> dict[str, Any]:
    return {"name": "test model", "algorithm": "naive", "dataset": "BTC-USD_1d", "end_ts": END_400, **overrides}


async def create(client: httpx.AsyncClient, account: Account, **overrides: Any) -> dict[str, Any]:
    r = await client.post("/api/models", headers=account.headers, json=body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def wait_model(
    client: httpx.AsyncClient, account: Account, model_id: str, *, timeout: float = 90
) -> dict[str, Any]:
    """Poll the model until it is no longer training."""
    deadline = time.monotonic() + timeout
    model: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await client.get(f"/api/models/{model_id}", headers=account.headers)
        assert r.status_code == 200, r.text
        model = r.json()
        if model["training_status"] != "training":
            return model
        await asyncio.sleep(0.1)
    raise AssertionError(f"model {model_id} still training: {model.get('training_job')}")


async def train(client: httpx.AsyncClient, account: Account, model_id: str) -> dict[str, Any]:
    r = await client.post(f"/api/models/{model_id}/train", headers=account.headers)
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def train_and_wait(client: httpx.AsyncClient, account: Account, model_id: str) -> dict[str, Any]:
    await train(client, account, model_id)
    model = await wait_model(client, account, model_id)
    assert model["training_status"] == "trained", model
    return model


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


def record_events(app: Any) -> RecordingPublisher:
    """Tee what the models domain publishes into a recorder (the sockets still get it)."""
    recorder = RecordingPublisher()
    core = app.fastapi.state.core
    gateway = core.publisher

    class Tee:
        async def publish(self, event: str, payload: dict[str, Any], room: str) -> None:
            await recorder.publish(event, payload, room)
            await gateway.publish(event, payload, room)

    core.publisher = Tee()
    core.runner._publisher = core.publisher  # job hooks announce through the runner's publisher
    return recorder
