"""Models on the live candle bus: closed bars record the actuals of stored predictions (live accuracy and drift
updated as the predict endpoint does), and ``live_predict`` models forecast on each closed bar, once per bar.

The candles pushed onto the bus are real: rows of the bundled BTC-USD_1d data after the training window, as the
live feed would have closed them."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from aaiti.market.feed import LiveCandle
from aaiti.ml.service import LIVE_WINDOW
from tests.conftest import Account
from tests.ml.api_support import DAILY, create, record_events, train_and_wait

SOURCE = "test-feed"


def _bar(i: int) -> LiveCandle:
    return LiveCandle(
        symbol="BTC",
        timeframe="1d",
        open_time=datetime.fromtimestamp(int(DAILY.ts[i]) / 1000, UTC),
        open=float(DAILY.open[i]),
        high=float(DAILY.high[i]),
        low=float(DAILY.low[i]),
        close=float(DAILY.close[i]),
        samples=1440,
        source=SOURCE,
    )


async def _publish(app: Any, bars: list[LiveCandle]) -> None:
    """Publish on the market's bus and wait until the models' tracker handled every candle."""
    tracker = app.fastapi.state.ml.live
    assert tracker is not None, "the ML runtime follows the market's candle bus"
    target = tracker.handled + len(bars)
    for bar in bars:
        app.fastapi.state.market.bus.publish(bar)
    deadline = time.monotonic() + 60
    while tracker.handled < target:
        assert time.monotonic() < deadline, f"tracker handled {tracker.handled} of {target}"
        await asyncio.sleep(0.02)


async def _predictions(client: httpx.AsyncClient, account: Account, model_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/api/models/{model_id}/predictions?limit=100", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_closed_bars_record_actuals_and_live_accuracy(
    client: httpx.AsyncClient, app: Any, alice: Account
) -> None:
    events = record_events(app)
    model = await create(client, alice, algorithm="linear")
    mid = model["id"]
    await train_and_wait(client, alice, mid)
    # Newest origin first: no predict call sees the target bar of an earlier one, so nothing resolves yet.
    for i in range(411, 399, -1):
        r = await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={"as_of": int(DAILY.ts[i])})
        assert r.status_code == 200, r.text
        assert r.json()["resolved"] == 0
    stored = await _predictions(client, alice, mid)
    assert len(stored) == 12 and all(p["resolved_at"] is None for p in stored)

    await _publish(app, [_bar(i) for i in range(401, 413)])

    items = await _predictions(client, alice, mid)
    assert len(items) == 12, "resolving stores nothing new (the model is not live_predict)"
    hits = []
    for p in items:
        target = int(p["forecast"]["steps"][-1]["ts"])
        i = int((DAILY.ts == target).nonzero()[0][0])
        close = float(DAILY.close[i])
        assert p["resolved_at"] is not None, p
        assert p["actual_value"] == pytest.approx(close)
        assert p["outcome"]["actual_source"] == f"live:{SOURCE}"
        assert p["outcome"]["abs_error"] == pytest.approx(abs(p["prediction_value"] - close))
        ret = math.log(close / p["forecast"]["origin_close"])
        if p["outcome"]["hit"] is not None:
            hits.append((ret > 0) == (p["forecast"]["direction"] == "up"))
    live = (await client.get(f"/api/models/{mid}", headers=alice.headers)).json()["performance_metrics"]["live"]
    assert live["n_resolved"] == 12 and live["window"] == LIVE_WINDOW and live["version"] == 1
    assert live["n_directional"] == len(hits) >= 10
    assert live["directional_accuracy"] == pytest.approx(sum(hits) / len(hits))
    p_eval = live["evaluation"]["directional_accuracy"]
    q = min(0.9, max(0.1, p_eval))
    assert live["threshold"] == pytest.approx(p_eval - 2 * math.sqrt(q * (1 - q) / len(hits)))
    assert live["drift"] is (live["directional_accuracy"] < live["threshold"])

    announced = [x for e, x, room in events.events if e == "model_live" and room == f"user:{alice.id}"]
    assert sum(len(x["resolved"]) for x in announced) == 12 and announced[-1]["live"] == live

    # A bar of another timeframe or symbol resolves nothing; a resolved prediction is not resolved again.
    other = _bar(412)
    await _publish(
        app,
        [
            LiveCandle(**{**_fields(other), "timeframe": "1h"}),
            LiveCandle(**{**_fields(other), "symbol": "ETH"}),
        ],
    )
    again = (await client.get(f"/api/models/{mid}", headers=alice.headers)).json()["performance_metrics"]["live"]
    assert again["n_resolved"] == 12


def _fields(bar: LiveCandle) -> dict[str, Any]:
    return {name: getattr(bar, name) for name in LiveCandle.__slots__}


async def test_live_predict_model_forecasts_once_per_closed_bar(
    client: httpx.AsyncClient, app: Any, alice: Account, bob: Account
) -> None:
    events = record_events(app)
    model = await create(client, alice, algorithm="linear")
    mid = model["id"]
    await train_and_wait(client, alice, mid)
    r = await client.patch(f"/api/models/{mid}", headers=bob.headers, json={"live_predict": True})
    assert r.status_code == 404, "owner-only"
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"live_predict": None})
    assert r.status_code == 422
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"live_predict": True})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["training_status"] == "trained", "switching live prediction on keeps the trained version"
    assert patched["training"]["live_predict"] is True

    # Bar 452 arrives twice (a reconnect replays it): one prediction for it.
    await _publish(app, [_bar(450), _bar(451), _bar(452), _bar(452)])
    items = await _predictions(client, alice, mid)
    assert sorted(p["forecast"]["origin_ts"] for p in items) == [int(DAILY.ts[i]) for i in (450, 451, 452)]
    by_origin = {p["forecast"]["origin_ts"]: p for p in items}
    for i in (450, 451, 452):
        p = by_origin[int(DAILY.ts[i])]
        assert p["version"] == 1 and p["forecast"]["steps"][-1]["ts"] == int(DAILY.ts[i + 1])
        assert p["forecast"]["live"]["live_bars"] == 1 and p["forecast"]["live"]["feed_source"] == SOURCE
    # Each bar resolved the prediction made on the bar before it.
    assert by_origin[int(DAILY.ts[450])]["actual_value"] == pytest.approx(float(DAILY.close[451]))
    assert by_origin[int(DAILY.ts[451])]["actual_value"] == pytest.approx(float(DAILY.close[452]))
    assert by_origin[int(DAILY.ts[452])]["resolved_at"] is None
    announced = [x for e, x, room in events.events if e == "model_prediction" and room == f"user:{alice.id}"]
    assert {x["prediction"]["id"] for x in announced} == {p["id"] for p in items}

    # The live bar equals the dataset's bar, so the forecast is the endpoint's forecast from that bar.
    r = await client.post(f"/api/models/{mid}/predict", headers=alice.headers, json={"as_of": int(DAILY.ts[452])})
    assert r.status_code == 200, r.text
    assert by_origin[int(DAILY.ts[452])]["prediction_value"] == pytest.approx(
        r.json()["prediction"]["prediction_value"]
    )

    # Switched off: closed bars resolve but no longer predict.
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"live_predict": False})
    assert r.status_code == 200 and r.json()["training"]["live_predict"] is False
    await _publish(app, [_bar(453)])
    after = await _predictions(client, alice, mid)
    assert len(after) == len(items) + 1, "only the endpoint's prediction was added"
    assert all(p["resolved_at"] is not None for p in after if p["forecast"]["steps"][-1]["ts"] == int(DAILY.ts[453]))


async def test_live_predict_is_refused_for_volume_features(client: httpx.AsyncClient, alice: Account) -> None:
    features = {"lags": 2, "indicators": [{"name": "volume_z", "period": 10}]}
    model = await create(client, alice, algorithm="linear", features=features)
    r = await client.patch(f"/api/models/{model['id']}", headers=alice.headers, json={"live_predict": True})
    assert r.status_code == 422 and "volume" in r.text
    r = await client.patch(f"/api/models/{model['id']}", headers=alice.headers, json={"live": True})
    assert r.status_code == 422, "unknown fields stay forbidden"
