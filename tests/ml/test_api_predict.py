"""Predictions: the stored forecast path with intervals and confidence, actuals and live accuracy, models on
stored candles, and restart safety (a new app on the same database and folder gives the same forecast; a
tampered artefact is refused and nothing is stored)."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from aaiti.app import create_app
from aaiti.core.config import Settings
from aaiti.market.repository import upsert_candles
from aaiti.ml.models import Prediction
from aaiti.ml.service import LIVE_WINDOW
from aaiti.ml.training import candles_fingerprint
from tests.conftest import Account, login, make_account
from tests.ml.api_support import DAILY, create, record_events, train_and_wait

DAY_MS = 86_400_000


async def _predict(client: httpx.AsyncClient, account: Account, model_id: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"/api/models/{model_id}/predict", headers=account.headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _count_predictions(app: Any) -> int:
    async with app.fastapi.state.core.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Prediction)) or 0)


async def test_predict_stores_the_path_and_tracks_live_accuracy(
    client: httpx.AsyncClient, app: Any, alice: Account
) -> None:
    events = record_events(app)
    model = await create(client, alice, algorithm="linear")
    trained = await train_and_wait(client, alice, model["id"])
    mid = model["id"]
    train_end = trained["latest_version"]["training_window"]["end_ts"]

    latest = await _predict(client, alice, mid)
    p = latest["prediction"]
    assert p["version"] == 1 and p["horizon"] == 1 and p["symbol"] == "BTC"
    origin_ms = int(DAILY.ts[-1])
    assert p["forecast"]["origin_ts"] == origin_ms, "the latest candle of the model's dataset"
    assert p["forecast"]["origin_close"] == pytest.approx(float(DAILY.close[-1]))
    step = p["forecast"]["steps"][0]
    assert step["ts"] == origin_ms + DAY_MS
    assert p["lower_value"] == step["price_lower"] < p["prediction_value"] == step["price"] < p["upper_value"]
    assert 0.5 <= p["confidence"] <= 1.0
    assert p["actual_value"] is None and p["resolved_at"] is None
    assert {"ret_1", "rsi_14"} <= set(p["features"])
    announced = [x for e, x, room in events.events if e == "model_prediction" and room == f"user:{alice.id}"]
    assert announced and announced[0]["prediction"]["id"] == p["id"]

    # Replay the days after the training window: each call records the actual of the previous one.
    resolved_total = 0
    for i in range(400, 416):
        out = await _predict(client, alice, mid, as_of=int(DAILY.ts[i]))
        assert out["prediction"]["forecast"]["origin_ts"] == int(DAILY.ts[i])
        resolved_total += out["resolved"]
    assert resolved_total == 15
    live = out["live"]
    assert live["n_resolved"] == 15 and live["window"] == LIVE_WINDOW and live["version"] == 1
    page = (await client.get(f"/api/models/{mid}/predictions?limit=50", headers=alice.headers)).json()
    assert page["total"] == 17 and page["items"][0]["id"] == out["prediction"]["id"], "newest first"
    resolved = [x for x in page["items"] if x["resolved_at"] is not None]
    assert len(resolved) == 15
    hits = []
    for x in resolved:
        target = int(x["forecast"]["steps"][-1]["ts"])
        i = int((DAILY.ts == target).nonzero()[0][0])
        assert x["actual_value"] == pytest.approx(float(DAILY.close[i]))
        up = DAILY.close[i] > x["forecast"]["origin_close"]
        assert x["outcome"]["hit"] == (up == (x["forecast"]["direction"] == "up"))
        assert x["outcome"]["covered"] == (x["lower_value"] <= x["actual_value"] <= x["upper_value"])
        hits.append(x["outcome"]["hit"])
    assert live["directional_accuracy"] == pytest.approx(sum(hits) / len(hits))
    p_eval = trained["performance_metrics"]["evaluation"]["model"]["directional_accuracy"]
    assert live["evaluation"]["directional_accuracy"] == p_eval
    q = min(0.9, max(0.1, p_eval))
    assert live["threshold"] == pytest.approx(p_eval - 2 * math.sqrt(q * (1 - q) / len(hits)))
    assert live["drift"] == (live["directional_accuracy"] < live["threshold"])
    detail = (await client.get(f"/api/models/{mid}", headers=alice.headers)).json()
    assert detail["performance_metrics"]["live"]["n_resolved"] == 15

    # No forecasts from inside the fitted window, no steps beyond what the model was trained for.
    inside = await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={"as_of": train_end})
    assert inside.status_code == 422 and "fitted on" in inside.json()["detail"]
    far = await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={"horizon": 5})
    assert far.status_code == 422 and "at most 1" in far.json()["detail"]
    assert (await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={"x": 1})).status_code == 422
    assert await _count_predictions(app) == 17

    # Changing the parameters makes the model untrained: its old version no longer serves.
    patched = await client.patch(
        f"/api/models/{mid}", headers=alice.headers, json={"parameters": {"calibration_fraction": 0.3}}
    )
    assert patched.status_code == 200 and patched.json()["training_status"] == "untrained"
    assert patched.json()["performance_metrics"] is None and patched.json()["latest_version"]["version"] == 1
    stale = await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={})
    assert stale.status_code == 409
    assert (await client.delete(f"/api/models/{mid}", headers=alice.headers)).status_code == 204
    assert await _count_predictions(app) == 0


async def test_model_on_stored_candles_resolves_when_the_candle_arrives(
    client: httpx.AsyncClient, app: Any, settings: Settings, alice: Account
) -> None:
    core = app.fastapi.state.core

    async def store(lo: int, hi: int) -> None:
        async with core.db.unit_of_work() as uow:
            await upsert_candles(
                uow.session,
                source="csv",
                symbol="BTC",
                timeframe="1d",
                candles=DAILY.slice(lo, hi),
                granularity_ms=DAY_MS,
                now=core.clock.now(),
            )
            await uow.commit()

    await store(0, 450)
    r = await client.post(
        "/api/models",
        headers=alice.headers,
        json={"name": "stored", "algorithm": "arima", "symbols": ["btc-usd"], "target_timeframe": "1d"},
    )
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["training"]["source"] == "stored" and model["training"]["candle_source"] == "csv"
    trained = await train_and_wait(client, alice, model["id"])
    assert trained["latest_version"]["data_fingerprint"] == candles_fingerprint(DAILY.slice(0, 450))
    inputs = Path(settings.var_dir) / "artifacts" / ".inputs"
    assert not inputs.exists() or not any(inputs.iterdir()), "the worker removes its input file"

    first = (await _predict(client, alice, model["id"]))["prediction"]
    assert first["forecast"]["origin_ts"] == int(DAILY.ts[449])
    assert first["forecast"]["source"] == "stored:csv:BTC:1d"
    await store(450, 452)
    second = await _predict(client, alice, model["id"])
    assert second["resolved"] == 1 and second["prediction"]["forecast"]["origin_ts"] == int(DAILY.ts[451])
    page = (await client.get(f"/api/models/{model['id']}/predictions", headers=alice.headers)).json()
    by_id = {x["id"]: x for x in page["items"]}
    assert by_id[first["id"]]["actual_value"] == pytest.approx(float(DAILY.close[450]))


async def test_restart_gives_the_same_forecast_and_tampering_is_refused(settings: Settings) -> None:
    def session(asgi: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    first_app = create_app(settings)
    async with LifespanManager(first_app, startup_timeout=30, shutdown_timeout=30), session(first_app) as client:
        alice = await make_account(client, first_app, "alice@example.com")
        model = await create(
            client,
            alice,
            algorithm="lstm",
            horizon=3,
            parameters={"epochs": 3, "sequence_length": 8, "hidden_size": 8},
        )
        await train_and_wait(client, alice, model["id"])
        before = (await _predict(client, alice, model["id"], as_of=int(DAILY.ts[420])))["prediction"]
    assert len(before["forecast"]["steps"]) == 3

    second_app = create_app(settings)
    async with LifespanManager(second_app, startup_timeout=30, shutdown_timeout=30), session(second_app) as client:
        tokens = await login(client, "alice@example.com")
        alice = Account(alice.id, alice.email, alice.password, tokens["access_token"], "", "trader")
        after = (await _predict(client, alice, model["id"], as_of=int(DAILY.ts[420])))["prediction"]
        assert after["forecast"]["steps"] == before["forecast"]["steps"]
        assert after["confidence"] == before["confidence"] and after["id"] != before["id"]

        stored = await _count_predictions(second_app)
        path = Path(settings.var_dir) / "artifacts" / model["id"] / "v000001.aaiti"
        original = path.read_bytes()
        tampered = bytearray(original)
        tampered[len(tampered) // 2] ^= 0x01
        path.write_bytes(bytes(tampered))
        r = await client.post(f"/api/models/{model['id']}/predict", headers=alice.headers, json={})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "conflict" and "SHA-256" in r.json()["detail"]
        assert await _count_predictions(second_app) == stored, "nothing stored from a refused artefact"
        path.unlink()
        r = await client.post(f"/api/models/{model['id']}/predict", headers=alice.headers, json={})
        assert r.status_code == 409 and "missing" in r.json()["detail"]
        path.write_bytes(original)
        assert (await client.post(f"/api/models/{model['id']}/predict", headers=alice.headers)).status_code == 200
        bob = await make_account(client, second_app, "bob@example.com")
        r = await client.post(f"/api/models/{model['id']}/predict", headers=bob.headers, json={})
        assert r.status_code == 404
        assert uuid.UUID(model["id"])
