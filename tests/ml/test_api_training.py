"""Training through the real job runner (spawned worker processes): versions and artefacts, determinism,
pruning, the per-user cap, cancellation, failure, reconciliation of ended jobs, and comparison."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from aaiti.core.audit import AuditLog
from aaiti.core.tasks.models import Job
from aaiti.ml import service
from aaiti.ml.models import MLModel
from aaiti.ml.training import candles_fingerprint
from tests.conftest import Account
from tests.ml.api_support import DAILY, create, record_events, train, train_and_wait, wait_job, wait_model


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jobs": {"workers": 1, "max_concurrent_per_user": 1}}


def _artifacts(settings: Any, model_id: str) -> Path:
    return Path(settings.var_dir) / "artifacts" / model_id


async def _audit_actions(app: Any, model_id: str) -> list[str]:
    async with app.fastapi.state.core.db.read() as session:
        rows = await session.scalars(
            select(AuditLog.action).where(AuditLog.resource_id == model_id).order_by(AuditLog.timestamp)
        )
        return list(rows.all())


async def test_training_records_versions_deterministically_and_prunes(
    client: httpx.AsyncClient, app: Any, settings: Any, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "KEEP_VERSIONS", 2)
    events = record_events(app)
    model = await create(client, alice, algorithm="linear")
    mid = model["id"]
    started = await train(client, alice, mid)
    assert started["version"] == 1
    assert started["job"]["kind"] == "ml.train" and started["model"]["training_status"] == "training"
    trained = await wait_model(client, alice, mid)
    assert trained["training_status"] == "trained", trained
    job = await wait_job(client, alice, started["job"]["id"], {"succeeded"})
    assert job["progress"] == 1.0 and job["result"]["version"] == 1
    assert trained["last_trained"] is not None and trained["training_error"] is None

    v1 = trained["latest_version"]
    assert v1["version"] == 1 and v1["algorithm"] == "linear"
    assert v1["data_fingerprint"] == candles_fingerprint(DAILY.slice(0, 400))
    assert v1["training_window"]["end_ts"] < v1["test_window"]["first_origin_ts"] + 1
    metrics = trained["performance_metrics"]["evaluation"]
    assert metrics["model"]["rmse"] > 0 and metrics["naive"]["rmse"] > 0 and metrics["n_test"] >= 10
    rows = {row["metric"]: row for row in trained["evaluation"]}
    assert rows["rmse"]["model"] == metrics["model"]["rmse"] and rows["rmse"]["naive"] == metrics["naive"]["rmse"]
    assert rows["rmse"]["better"] == ("model" if metrics["model"]["rmse"] < metrics["naive"]["rmse"] else "naive")
    assert rows["directional_accuracy"]["naive"] is None and rows["directional_accuracy"]["better"] is None
    path = _artifacts(settings, mid) / "v000001.aaiti"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == v1["sha256"]
    assert path.stat().st_size == v1["size"]

    announced = [p for e, p, room in events.events if e == "model_trained" and room == f"user:{alice.id}"]
    assert announced and announced[-1]["outcome"] == "trained" and announced[-1]["version"] == 1
    assert announced[-1]["metrics"]["model"]["rmse"] == metrics["model"]["rmse"]

    # Same data, same seed: the same model, byte for byte. Three versions with KEEP_VERSIONS=2 keep two.
    v2 = (await train_and_wait(client, alice, mid))["latest_version"]
    assert v2["version"] == 2 and v2["sha256"] == v1["sha256"] and v2["metrics"] == v1["metrics"]
    assert (await train_and_wait(client, alice, mid))["latest_version"]["version"] == 3
    versions = (await client.get(f"/api/models/{mid}/versions", headers=alice.headers)).json()
    assert [v["version"] for v in versions["items"]] == [3, 2] and versions["total"] == 2
    assert sorted(p.name for p in _artifacts(settings, mid).iterdir()) == ["v000002.aaiti", "v000003.aaiti"]
    actions = await _audit_actions(app, mid)
    assert actions.count("models.train") == 3 and actions.count("models.train.succeeded") == 3

    # Deleting removes the versions, the predictions and the files.
    assert (await client.delete(f"/api/models/{mid}", headers=alice.headers)).status_code == 204
    assert not _artifacts(settings, mid).exists()
    assert (await client.get(f"/api/models/{mid}/versions", headers=alice.headers)).status_code == 404


async def test_cap_conflict_and_cancellation(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    events = record_events(app)
    slow = await create(client, alice, algorithm="random_forest", parameters={"n_estimators": 2000})
    other = await create(client, alice)
    started = await train(client, alice, slow["id"])
    job_id = started["job"]["id"]
    for _ in range(600):
        job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
        if job["status"] != "queued" and (job["progress"] > 0.05 or job["status"] != "running"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "running", job
    again = await client.post(f"/api/models/{slow['id']}/train", headers=alice.headers)
    assert again.status_code == 409 and "already training" in again.json()["detail"]
    capped = await client.post(f"/api/models/{other['id']}/train", headers=alice.headers)
    assert capped.status_code == 429 and "retry-after" in capped.headers
    changed = await client.patch(f"/api/models/{slow['id']}", headers=alice.headers, json={"seed": 3})
    assert changed.status_code == 409

    assert (await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)).status_code == 200
    job = await wait_job(client, alice, job_id, {"cancelled", "failed", "succeeded"})
    assert job["status"] == "cancelled" and 0 < job["progress"] < 1
    model = await wait_model(client, alice, slow["id"])
    assert model["training_status"] == "untrained", "back to the status it had before"
    assert model["training_job"]["status"] == "cancelled" and model["latest_version"] is None
    # The job's on_end hook wrote it down (and announced it) in the transaction that ended the job.
    for _ in range(50):
        async with app.fastapi.state.core.db.read() as session:
            row = await session.get(MLModel, uuid.UUID(slow["id"]))
            assert row is not None
            if row.training_status != "training":
                break
        await asyncio.sleep(0.1)
    assert row.training_status == "untrained"
    assert "models.train.cancelled" in await _audit_actions(app, slow["id"])
    cancelled = [p for e, p, _ in events.events if e == "model_trained" and p["outcome"] == "cancelled"]
    assert cancelled and cancelled[0]["model_id"] == slow["id"] and cancelled[0]["status"] == "untrained"
    # The slot is free again.
    assert (await client.post(f"/api/models/{other['id']}/train", headers=alice.headers)).status_code == 202
    assert (await wait_model(client, alice, other["id"]))["training_status"] == "trained"


async def test_failure_marks_the_model_failed_with_the_error(
    client: httpx.AsyncClient, app: Any, settings: Any, alice: Account
) -> None:
    events = record_events(app)
    model = await create(client, alice)
    blocker = _artifacts(settings, model["id"])
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the worker cannot create the model's artefact folder
    await train(client, alice, model["id"])
    failed = await wait_model(client, alice, model["id"])
    assert failed["training_status"] == "failed"
    assert failed["training_error"] and "Error" in failed["training_error"]
    assert failed["training_job"]["status"] == "failed"
    for _ in range(50):
        if any(e == "model_trained" and p["outcome"] == "failed" for e, p, _ in events.events):
            break
        await asyncio.sleep(0.1)
    assert any(e == "model_trained" and p["error"] == failed["training_error"] for e, p, _ in events.events)
    assert "models.train.failed" in await _audit_actions(app, model["id"])
    blocker.unlink()
    trained = await train_and_wait(client, alice, model["id"])
    assert trained["training_error"] is None and trained["latest_version"]["version"] == 1


async def test_reconciler_settles_interrupted_lost_and_cancelled_jobs(app: Any, alice: Account) -> None:
    core = app.fastapi.state.core
    runtime = app.fastapi.state.ml
    owner = uuid.UUID(alice.id)
    now = core.clock.now()

    def model(name: str, job_id: uuid.UUID | None) -> MLModel:
        return MLModel(
            user_id=owner,
            name=name,
            algorithm_type="naive",
            target_timeframe="1d",
            symbols=["BTC"],
            parameters={},
            training_spec={"dataset": "BTC-USD_1d"},
            training_status="training",
            training_job_id=job_id,
            performance_metrics={"version": 1},
        )

    interrupted = Job(owner_id=owner, kind="ml.train", params={}, status="failed", error="interrupted by restart")
    cancelled = Job(owner_id=owner, kind="ml.train", params={"previous_status": "trained"}, status="cancelled")
    running = Job(owner_id=owner, kind="ml.train", params={}, status="running")
    async with core.db.unit_of_work() as uow:
        for job in (interrupted, cancelled, running):
            job.created_at = now
            uow.session.add(job)
        await uow.session.flush()
        rows = {
            "interrupted": model("a", interrupted.id),
            "cancelled": model("b", cancelled.id),
            "lost": model("c", uuid.uuid4()),
            "running": model("d", running.id),
        }
        uow.session.add_all(rows.values())
        await uow.commit()
    assert await runtime.reconcile() == 3
    async with core.db.read() as session:
        got = {k: await session.get(MLModel, m.id) for k, m in rows.items()}
    assert got["interrupted"].training_status == "failed"
    assert got["interrupted"].training_error == "interrupted by restart"
    assert got["cancelled"].training_status == "trained", "a cancelled retraining restores the previous status"
    assert got["lost"].training_status == "failed" and "lost" in got["lost"].training_error
    assert got["running"].training_status == "training"
    assert await runtime.reconcile() == 0


async def test_compare_ranks_models_on_the_same_data_and_window(client: httpx.AsyncClient, alice: Account) -> None:
    ids = {}
    for algorithm in ("linear", "drift", "logistic_regression"):
        m = await create(client, alice, name=algorithm, algorithm=algorithm)
        await train_and_wait(client, alice, m["id"])
        ids[algorithm] = m["id"]
    r = await client.post("/api/models/compare", headers=alice.headers, json={"model_ids": list(ids.values())})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["metric"] == "rmse" and out["order"] == "lower_is_better"
    ranked = [x for x in out["ranking"] if x["rank"] is not None]
    assert [x["rank"] for x in ranked] == [1, 2]
    assert ranked[0]["value"] <= ranked[1]["value"]
    assert {x["name"] for x in ranked} == {"linear", "drift"}
    assert all(x["naive_value"] == out["naive"]["rmse"] for x in ranked), "one naive baseline, shown beside each"
    classifier = out["ranking"][-1]
    assert classifier["name"] == "logistic_regression" and classifier["rank"] is None
    assert classifier["value"] is None and "forecasts no value" in classifier["null_reason"]
    by_direction = await client.post(
        "/api/models/compare",
        headers=alice.headers,
        json={"model_ids": list(ids.values()), "metric": "directional_accuracy"},
    )
    assert by_direction.json()["order"] == "higher_is_better"
    values = [x["value"] for x in by_direction.json()["ranking"] if x["rank"] is not None]
    assert values == sorted(values, reverse=True) and len(values) == 3

    elsewhere = await create(client, alice, name="other window", algorithm="linear", end_ts=int(DAILY.ts[449]))
    await train_and_wait(client, alice, elsewhere["id"])
    r = await client.post(
        "/api/models/compare", headers=alice.headers, json={"model_ids": [ids["linear"], elsewhere["id"]]}
    )
    assert r.status_code == 422 and "other data" in r.json()["detail"]
    assert (
        await client.post("/api/models/compare", headers=alice.headers, json={"model_ids": [ids["linear"]]})
    ).status_code == 422
