"""The job runner end to end: a real spawn process pool, progress, cancellation, owner scoping, the per-user
cap, and recovery after the server process is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import PASSWORD, TEST_SECRET, Account, free_port

from aaiti.core.realtime.publisher import RecordingPublisher


async def _wait_status(
    client: httpx.AsyncClient, account: Account, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/jobs/{job_id}", headers=account.headers)).json()
        if job["status"] in statuses:
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


async def test_job_runs_in_a_worker_with_progress(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    recorder = RecordingPublisher()
    gateway_publish = app.fastapi.state.gateway.publish

    async def tee(event: str, payload: dict[str, Any], room: str) -> None:
        await recorder.publish(event, payload, room)
        await gateway_publish(event, payload, room)

    app.fastapi.state.core.runner._publisher = type("P", (), {"publish": staticmethod(tee)})()
    r = await client.post(
        "/api/jobs", headers=alice.headers, json={"kind": "selftest", "params": {"steps": 5, "step_seconds": 0.05}}
    )
    assert r.status_code == 202, r.text
    job = await _wait_status(client, alice, r.json()["id"], {"succeeded", "failed"})
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"]["sum"] == 10
    assert job["result"]["pid"] != os.getpid(), "jobs run in a worker process"
    progress = [p["progress"] for e, p, room in recorder.events if e == "job_progress"]
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    assert any(e == "job_update" and p["job"]["status"] == "succeeded" for e, p, _ in recorder.events)


async def test_cancel_running_job(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    r = await client.post(
        "/api/jobs", headers=alice.headers, json={"kind": "selftest", "params": {"steps": 100, "step_seconds": 0.2}}
    )
    job_id = r.json()["id"]
    await _wait_status(client, alice, job_id, {"running"})
    for _ in range(100):
        if (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()["progress"] > 0:
            break
        await asyncio.sleep(0.1)
    assert (await client.post(f"/api/jobs/{job_id}/cancel", headers=bob.headers)).status_code == 404
    assert (await client.get(f"/api/jobs/{job_id}", headers=bob.headers)).status_code == 404
    c = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert c.status_code == 200 and c.json()["cancel_requested"] is True
    job = await _wait_status(client, alice, job_id, {"cancelled", "succeeded", "failed"}, timeout=30)
    assert job["status"] == "cancelled"
    assert 0 < job["progress"] < 1
    again = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert again.status_code == 409
    listing = (await client.get("/api/jobs", headers=bob.headers)).json()
    assert listing["total"] == 0


async def test_bad_job_requests(client: httpx.AsyncClient, alice: Account, viewer: Account) -> None:
    assert (await client.post("/api/jobs", headers=alice.headers, json={"kind": "nope"})).status_code == 422
    bad = await client.post("/api/jobs", headers=alice.headers, json={"kind": "selftest", "params": {"steps": 10**9}})
    assert bad.status_code == 422 and "steps" in bad.json()["detail"]
    assert (await client.post("/api/jobs", headers=viewer.headers, json={"kind": "selftest"})).status_code == 403
    assert (await client.get("/api/jobs/not-a-uuid", headers=alice.headers)).status_code == 422


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jobs": {"workers": 1, "max_concurrent_per_user": 2}}


async def test_per_user_cap(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    body = {"kind": "selftest", "params": {"steps": 50, "step_seconds": 0.1}}
    ids = [(await client.post("/api/jobs", headers=alice.headers, json=body)).json()["id"] for _ in range(2)]
    third = await client.post("/api/jobs", headers=alice.headers, json=body)
    assert third.status_code == 429 and "retry-after" in third.headers
    assert (await client.post("/api/jobs", headers=bob.headers, json=body)).status_code == 202
    second = await client.post(f"/api/jobs/{ids[1]}/cancel", headers=alice.headers)
    assert second.json()["status"] == "cancelled", "a queued job is cancelled at once"
    await client.post(f"/api/jobs/{ids[0]}/cancel", headers=alice.headers)


def test_recovery_after_kill_9(tmp_path: Path, template_db: Path) -> None:
    import shutil

    db = tmp_path / "aaiti.db"
    shutil.copy(template_db, db)
    port = free_port()
    env = {
        **os.environ,
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(tmp_path),
        "AAITI_AUTH__JWT_SECRET": TEST_SECRET,
        "AAITI_DATABASE__URL": f"sqlite+aiosqlite:///{db}",
        "AAITI_ADMIN_EMAIL": "ops@example.com",
        "AAITI_ADMIN_PASSWORD": PASSWORD,
        "AAITI_JOBS__WORKERS": "1",
        "AAITI_LOG__LEVEL": "WARNING",
        "AAITI_SERVER__STATIC_DIR": str(tmp_path / "none"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aaiti", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(300):
                try:
                    if http.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = http.post("/api/auth/login", json={"email": "ops@example.com", "password": PASSWORD}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            job_id = http.post(
                "/api/jobs", headers=headers, json={"kind": "selftest", "params": {"steps": 100, "step_seconds": 0.5}}
            ).json()["id"]
            for _ in range(200):
                if http.get(f"/api/jobs/{job_id}", headers=headers).json()["status"] == "running":
                    break
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)  # the server and its worker processes, no clean-up
            proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    proc2 = subprocess.Popen(
        [sys.executable, "-m", "aaiti", "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(300):
                try:
                    if http.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = http.post("/api/auth/login", json={"email": "ops@example.com", "password": PASSWORD}).json()
            job = http.get(f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
            assert job["status"] == "failed"
            assert job["error"] == "interrupted by restart"
    finally:
        os.killpg(proc2.pid, signal.SIGTERM)
        proc2.wait(30)


async def test_runner_failure_fails_the_job(
    client: httpx.AsyncClient, app: Any, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = app.fastapi.state.core.runner

    async def broken_pool() -> Any:
        raise OSError("cannot start worker processes")

    monkeypatch.setattr(runner, "_ensure_pool", broken_pool)
    r = await client.post("/api/jobs", headers=alice.headers, json={"kind": "selftest", "params": {"steps": 1}})
    job = await _wait_status(client, alice, r.json()["id"], {"failed", "succeeded"})
    assert job["status"] == "failed"
    assert "cannot start worker processes" in job["error"]
