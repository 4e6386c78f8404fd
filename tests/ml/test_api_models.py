"""/api/models without training: the algorithm listing, creation with validation by the registry and against
the data, owner scoping, viewers, mass assignment and the PATCH/DELETE rules."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from aaiti.core.audit import AuditLog
from aaiti.ml import ALGORITHMS, SEED_ALIASES
from aaiti.ml.models import MLModel
from tests.conftest import Account
from tests.ml.api_support import END_400, body, create


async def test_algorithms_list_schemas_availability_and_seed_aliases(
    client: httpx.AsyncClient, alice: Account, viewer: Account
) -> None:
    r = await client.get("/api/models/algorithms", headers=viewer.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    items = {a["id"]: a for a in out["items"]}
    assert set(items) == set(ALGORITHMS)
    arima = items["arima"]
    assert arima["params_schema"]["properties"]["d"]["maximum"] == 3
    assert arima["defaults"]["d"] == 1
    assert arima["available"] is True and arima["reason"] is None
    for a in items.values():
        assert isinstance(a["available"], bool)
        assert (a["reason"] is None) == a["available"], a
        assert a["params_schema"]["type"] == "object"
    assert "svm" in items["svr"]["aliases"]
    assert out["seed_aliases"] == SEED_ALIASES
    assert len(out["seed_aliases"]) == 14
    assert (await client.get("/api/models/algorithms")).status_code == 401


async def test_create_maps_seed_ids_and_derives_the_series(client: httpx.AsyncClient, alice: Account) -> None:
    model = await create(client, alice, algorithm="svm", parameters={"C": 2})
    assert model["algorithm"] == "svr" and model["algorithm_type"] == "svr"
    assert model["requested_algorithm"] == "svm"
    assert model["symbols"] == ["BTC"] and model["target_timeframe"] == "1d"
    assert model["parameters"]["C"] == 2 and model["parameters"]["kernel"] == "rbf"
    assert model["training_status"] == "untrained"
    assert model["performance_metrics"] is None and model["evaluation"] is None
    assert model["training"]["dataset"] == "BTC-USD_1d" and model["training"]["end_ts"] == END_400
    # The seed's field name is accepted too.
    seed_style = {k: v for k, v in body().items() if k != "algorithm"} | {"algorithm_type": "ensemble_gradient_boost"}
    r = await client.post("/api/models", headers=alice.headers, json=seed_style)
    assert r.status_code == 201, r.text
    assert r.json()["algorithm"] == "hist_gradient_boosting"
    explicit = await create(client, alice, symbols=["btc-usd"], target_timeframe="1d")
    assert explicit["symbols"] == ["BTC"]


async def test_an_unavailable_algorithm_is_refused_with_its_reason(client: httpx.AsyncClient, alice: Account) -> None:
    available, reason = ALGORITHMS["prophet"].availability
    r = await client.post("/api/models", headers=alice.headers, json=body(algorithm="prophet"))
    if available:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert reason is not None and reason in r.json()["detail"]


async def test_bad_parameters_and_specs_are_422_with_reasons(client: httpx.AsyncClient, alice: Account) -> None:
    async def bad(**overrides: Any) -> dict[str, Any]:
        r = await client.post("/api/models", headers=alice.headers, json=body(**overrides))
        assert r.status_code == 422, (overrides, r.text)
        out: dict[str, Any] = r.json()
        assert out["error"] == "invalid"
        return out

    d4 = await bad(algorithm="arima", parameters={"d": 4})
    assert "d" in d4["detail"] and any(e["loc"] == ["d"] for e in d4["errors"])
    trees = await bad(algorithm="random_forest", parameters={"n_estimators": 10**9})
    assert "n_estimators" in trees["detail"]
    # A sequence longer than the training rows is refused against the data, not at fit time.
    seq = await bad(algorithm="lstm", parameters={"sequence_length": 500})
    assert "sequence of this length needs" in seq["detail"]
    assert "unknown algorithm" in (await bad(algorithm="quantum_oracle"))["detail"]
    assert "unknown dataset" in (await bad(dataset="DOGE-USD_1m"))["detail"]
    await bad(parameters={"nope": 1})
    await bad(horizon=0)
    await bad(symbols=["ETH"])
    await bad(target_timeframe="1h")
    await bad(symbols=["BTC", "ETH"])
    await bad(end_ts=int(1e12))  # before the data starts: too few candles
    stored = await bad(dataset=None, symbols=["BTC"], target_timeframe="1d")
    assert "no stored BTC 1d candles" in stored["detail"]
    # Mass assignment: server-owned fields are not writable.
    for field, value in (
        ("training_status", "trained"),
        ("user_id", str(uuid.uuid4())),
        ("performance_metrics", {"rmse": 0}),
        ("id", str(uuid.uuid4())),
    ):
        out = await bad(**{field: value})
        assert field in out["detail"]


async def test_owner_only_and_viewers_read_only(
    client: httpx.AsyncClient, app: Any, alice: Account, bob: Account, viewer: Account
) -> None:
    model = await create(client, alice)
    mid = model["id"]
    for method, path, payload in (
        ("GET", f"/api/models/{mid}", None),
        ("PATCH", f"/api/models/{mid}", {"name": "mine now"}),
        ("DELETE", f"/api/models/{mid}", None),
        ("POST", f"/api/models/{mid}/train", None),
        ("POST", f"/api/models/{mid}/predict", {}),
        ("GET", f"/api/models/{mid}/versions", None),
        ("GET", f"/api/models/{mid}/predictions", None),
    ):
        r = await client.request(method, path, headers=bob.headers, json=payload)
        assert r.status_code == 404, (method, path, r.status_code)
        assert r.json()["error"] == "not_found"
    compare = await client.post(
        "/api/models/compare", headers=bob.headers, json={"model_ids": [mid, str(uuid.uuid4())]}
    )
    assert compare.status_code == 404
    assert (await client.get("/api/models", headers=bob.headers)).json()["total"] == 0
    listing = (await client.get("/api/models", headers=alice.headers)).json()
    assert [m["id"] for m in listing["items"]] == [mid] and listing["total"] == 1
    # Viewers list their own (none) and may not create.
    assert (await client.get("/api/models", headers=viewer.headers)).json()["total"] == 0
    assert (await client.post("/api/models", headers=viewer.headers, json=body())).status_code == 403
    async with app.fastapi.state.core.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(MLModel)) == 1


async def test_list_is_paginated_and_filterable(client: httpx.AsyncClient, alice: Account) -> None:
    ids = [(await create(client, alice, name=f"m{i}"))["id"] for i in range(3)]
    page = (await client.get("/api/models?limit=2&offset=0", headers=alice.headers)).json()
    rest = (await client.get("/api/models?limit=2&offset=2", headers=alice.headers)).json()
    assert page["total"] == rest["total"] == 3 and len(page["items"]) == 2 and len(rest["items"]) == 1
    assert {m["id"] for m in page["items"] + rest["items"]} == set(ids)
    assert (await client.get("/api/models?status=trained", headers=alice.headers)).json()["total"] == 0
    assert (await client.get("/api/models?status=bogus", headers=alice.headers)).status_code == 422
    assert (await client.get("/api/models?limit=1000", headers=alice.headers)).status_code == 422


async def test_patch_rules(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    model = await create(client, alice, algorithm="arima")
    mid = model["id"]
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"name": "  renamed  "})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"parameters": {"p": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["parameters"]["p"] == 2 and r.json()["parameters"]["q"] == 1, "parameters merge"
    assert (
        await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"parameters": {"d": 9}})
    ).status_code == 422
    for forbidden in ({"training_status": "trained"}, {"algorithm": "lstm"}, {"dataset": "ETH-USD_1d"}):
        assert (await client.patch(f"/api/models/{mid}", headers=alice.headers, json=forbidden)).status_code == 422
    assert (await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"horizon": None})).status_code == 422
    r = await client.patch(f"/api/models/{mid}", headers=alice.headers, json={"horizon": 3, "end_ts": None})
    assert r.status_code == 200 and r.json()["training"]["horizon"] == 3 and r.json()["training"]["end_ts"] is None
    async with app.fastapi.state.core.db.read() as session:
        actions = list((await session.scalars(select(AuditLog.action).where(AuditLog.resource_id == mid))).all())
    assert actions.count("models.update") == 3 and "models.create" in actions


async def test_delete_untrained_model(client: httpx.AsyncClient, alice: Account, viewer: Account) -> None:
    model = await create(client, alice)
    assert (await client.delete(f"/api/models/{model['id']}", headers=viewer.headers)).status_code == 403
    assert (await client.delete(f"/api/models/{model['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/api/models/{model['id']}", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"/api/models/{model['id']}", headers=alice.headers)).status_code == 404


async def test_untrained_model_cannot_predict_or_compare(client: httpx.AsyncClient, alice: Account) -> None:
    a = await create(client, alice)
    b = await create(client, alice)
    r = await client.post(f"/api/models/{a['id']}/predict", headers=alice.headers, json={})
    assert r.status_code == 409 and "train it first" in r.json()["detail"]
    r = await client.post("/api/models/compare", headers=alice.headers, json={"model_ids": [a["id"], b["id"]]})
    assert r.status_code == 422 and "never trained" in r.json()["detail"]
    r = await client.post("/api/models/compare", headers=alice.headers, json={"model_ids": [a["id"], a["id"]]})
    assert r.status_code == 422
