"""/api/backtests end to end: a real job in a worker process, the stored result, events, owner scoping,
reproducibility through the API, compare, sorting, the robustness run kinds, delete (audited)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from aaiti.backtests.models import Backtest, BacktestTrade
from aaiti.backtests.schemas import BacktestIn
from aaiti.backtests.service import plan_offline
from aaiti.backtests.tasks import execute
from aaiti.core.audit import AuditLog
from aaiti.core.realtime.publisher import RecordingPublisher
from tests.backtests.helpers import body, run_to_completion, wait_job
from tests.conftest import Account


def _record_events(app: Any) -> RecordingPublisher:
    """Keep every event the runner and the backtest service publish (and still send them)."""
    recorder = RecordingPublisher()
    gateway_publish = app.fastapi.state.gateway.publish

    async def tee(event: str, payload: dict[str, Any], room: str) -> None:
        await recorder.publish(event, payload, room)
        await gateway_publish(event, payload, room)

    publisher = type("P", (), {"publish": staticmethod(tee)})()
    app.fastapi.state.core.runner._publisher = publisher  # the runner hands it to on_success via uow.publisher
    return recorder


async def _count(app: Any, model: Any, *where: Any) -> int:
    async with app.fastapi.state.core.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_catalog(client: httpx.AsyncClient, app: Any, viewer: Account) -> None:
    r = await client.get("/api/backtests/strategies", headers=viewer.headers)
    assert r.status_code == 200
    cat = r.json()
    by_name = {s["name"]: s for s in cat["strategies"]}
    assert {"buy_and_hold", "sma_crossover", "rsi_mean_reversion", "rules"} <= set(by_name)
    fast = by_name["sma_crossover"]["params_schema"]["properties"]["fast"]
    assert fast["minimum"] == 1 and fast["type"] == "integer"
    assert {"fees", "slippage", "stops", "sizing", "allow_short"} <= set(cat["config_schema"]["properties"])
    assert set(cat["run_kinds"]) == {"single", "sweep", "walk_forward", "monte_carlo"}
    assert "sharpe" in cat["sortable_metrics"] and cat["limits"]["max_bars"] == 1_000_000
    assert cat["timeframes"] == ["5m", "15m", "30m", "1h", "4h", "1d"]


async def test_single_run_end_to_end(client: httpx.AsyncClient, app: Any, alice: Account, bob: Account) -> None:
    events = _record_events(app)
    payload = body(name="SMA 10/30 on 2017")
    r = await client.post("/api/backtests", headers=alice.headers, json=payload)
    assert r.status_code == 202, r.text
    sub = r.json()
    assert sub["bars"] == 365 and sub["status"] == "queued"
    assert sub["links"] == {"job": f"/api/jobs/{sub['job_id']}", "backtest": f"/api/backtests/{sub['backtest_id']}"}
    job = await wait_job(client, alice, sub["job_id"], {"succeeded", "failed"})
    assert job["status"] == "succeeded", job
    assert job["result"]["backtest_id"] == sub["backtest_id"]
    d = (await client.get(sub["links"]["backtest"], headers=alice.headers)).json()

    # The stored numbers are exactly what the same run computes in this process (the worker ran the same code).
    plan = plan_offline(BacktestIn.model_validate(payload), {"BTC": "BTC-USD_1d"})
    candles = plan.resolved[0].candles
    expected = execute(plan.spec, {"BTC": candles})
    assert d["fingerprint_parts"] == expected["fingerprint"]
    assert d["fingerprint"] == expected["fingerprint"]["combined"]
    assert d["metrics"] == expected["metrics"]
    assert d["name"] == "SMA 10/30 on 2017" and d["kind"] == "single" and d["engine"] == "vectorized"
    assert d["strategy_params"] == {"fast": 10, "slow": 30, "short": False}
    assert d["config"]["fees"]["taker_bps"] == 10 and d["config"]["initial_cash"] == 10_000
    assert d["initial_capital"] == "10000" and float(d["final_capital"]) == pytest.approx(expected["final_equity"])
    assert d["data_sources"][0]["source"] == "bundled:bitstamp" and d["data_sources"][0]["dataset"] == "BTC-USD_1d"
    assert d["range_start"] == "2017-01-01T00:00:00Z" and d["bars"] == 365
    # Metrics: every one has a value or a reason, never both missing.
    for name, m in d["metrics"].items():
        assert (m["value"] is None) == (m["reason"] is not None), name
    assert d["headline"]["sharpe"] == d["metrics"]["sharpe"]
    # Chart series.
    assert len(d["equity"]["ts"]) == 365 and d["equity"]["values"][-1] == pytest.approx(expected["final_equity"])
    assert max(d["drawdown"]["values"]) <= 0 and min(d["drawdown"]["values"]) == pytest.approx(
        d["metrics"]["max_drawdown"]["value"]
    )
    # Buy-and-hold benchmark: bought at the first bar's open, frictionless.
    assert d["benchmark"] == expected["benchmark"]
    assert d["benchmark"]["values"][-1] == pytest.approx(10_000 * candles.close[-1] / candles.open[0])
    # Trades, paginated, with reasons and fees.
    assert d["num_trades"] == len(expected["trades"]) == d["trades"]["total"] > 1
    first = d["trades"]["items"][0]
    assert first["entry_reason"] == "signal" and first["exit_reason"] in {"signal", "end_of_data"}
    assert first["fees"] > 0 and "return" in first and first["seq"] == 0
    page = (await client.get(f"{sub['links']['backtest']}/trades?limit=1&offset=1", headers=alice.headers)).json()
    assert page["total"] == d["num_trades"] and len(page["items"]) == 1 and page["items"][0]["seq"] == 1
    assert page["items"][0]["pnl"] == pytest.approx(expected["trades"][1]["pnl"])

    # Events: progress through the runner, completion to the owner's room after the commit.
    progress = [p["progress"] for e, p, _ in events.events if e == "job_progress"]
    assert progress and progress[-1] == 1.0
    done = [(p, room) for e, p, room in events.events if e == "backtest_completed"]
    assert {room for _, room in done} == {f"user:{alice.id}", f"job:{sub['job_id']}"}
    assert done[0][0]["backtest_id"] == sub["backtest_id"] and done[0][0]["fingerprint"] == d["fingerprint"]

    # Owner only: another user's id answers 404 everywhere, and their list is empty.
    for method, url in (
        ("GET", sub["links"]["backtest"]),
        ("GET", f"{sub['links']['backtest']}/trades"),
        ("GET", f"/api/backtests/compare?ids={sub['backtest_id']}"),
        ("DELETE", sub["links"]["backtest"]),
    ):
        assert (await client.request(method, url, headers=bob.headers)).status_code == 404, (method, url)
    assert (await client.get("/api/backtests", headers=bob.headers)).json()["total"] == 0

    # Reproducibility through the API: the same request again gives an equal fingerprint.
    again = await run_to_completion(client, alice, payload)
    assert again["id"] != d["id"]
    assert again["fingerprint_parts"] == d["fingerprint_parts"]
    cheaper = await run_to_completion(client, alice, body(config={"fees": {"taker_bps": 0}}))
    assert cheaper["fingerprint_parts"]["data"] == d["fingerprint_parts"]["data"]
    assert cheaper["fingerprint_parts"]["config"] != d["fingerprint_parts"]["config"]

    # Compare, and the list sorted by a metric.
    c = await client.get(f"/api/backtests/compare?ids={d['id']},{cheaper['id']}", headers=alice.headers)
    assert c.status_code == 200
    cmp = c.json()
    assert [i["id"] for i in cmp["items"]] == [d["id"], cheaper["id"]]
    assert cmp["metrics"]["fees_paid"][0]["value"] > 0 and cmp["metrics"]["fees_paid"][1]["value"] == 0
    assert cmp["metrics"]["total_return"][1]["value"] > cmp["metrics"]["total_return"][0]["value"]
    listing = (await client.get("/api/backtests?sort=total_return&order=desc", headers=alice.headers)).json()
    assert listing["total"] == 3 and listing["items"][0]["id"] == cheaper["id"]
    returns = [i["total_return"] for i in listing["items"]]
    assert returns == sorted(returns, reverse=True)
    bad_sort = await client.get("/api/backtests?sort=password_hash", headers=alice.headers)
    assert bad_sort.status_code == 422 and "sortable" in bad_sort.json()["detail"]
    assert (await client.get("/api/backtests/compare?ids=nope", headers=alice.headers)).status_code == 422

    # Delete: audited, trades gone, then 404.
    assert (await client.delete(f"/api/backtests/{d['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/api/backtests/{d['id']}", headers=alice.headers)).status_code == 404
    assert await _count(app, BacktestTrade, BacktestTrade.backtest_id == uuid.UUID(d["id"])) == 0
    audit = await _count(app, AuditLog, AuditLog.action == "backtests.delete", AuditLog.resource_id == d["id"])
    assert audit == 1
    assert await _count(app, AuditLog, AuditLog.action == "backtests.run") == 3


async def test_robustness_kinds(client: httpx.AsyncClient, alice: Account) -> None:
    sweep = await run_to_completion(
        client, alice, body(kind="sweep", sweep={"grid": {"fast": [5, 10, 40], "slow": [20, 30]}})
    )
    assert sweep["robustness"]["rows"] == 6 and sweep["robustness"]["errors"] == 2
    url = sweep["robustness"]["runs_url"]
    default = (await client.get(url, headers=alice.headers)).json()
    assert default["sort"] == "sharpe" and default["order"] == "desc" and default["total"] == 6
    sharpe = [i["metrics"]["sharpe"]["value"] for i in default["items"] if i["metrics"]]
    assert sharpe == sorted(sharpe, reverse=True)
    assert default["items"][0]["params"] == sweep["robustness"]["best_params"]
    assert [i["error"] is not None for i in default["items"]][-2:] == [True, True], "failed rows sort last"
    by_dd = (await client.get(f"{url}?sort=max_drawdown&order=asc&limit=2&offset=1", headers=alice.headers)).json()
    assert [i["rank"] for i in by_dd["items"]] == [2, 3]
    everything = (await client.get(f"{url}?sort=max_drawdown&order=asc", headers=alice.headers)).json()["items"]
    dds = [i["metrics"]["max_drawdown"]["value"] for i in everything if i["metrics"]]
    assert dds == sorted(dds)
    assert (await client.get(f"{url}?sort=bogus", headers=alice.headers)).status_code == 422

    wf = await run_to_completion(
        client,
        alice,
        body(kind="walk_forward", walk_forward={"grid": {"fast": [5, 10]}, "train_bars": 120, "test_bars": 60}),
    )
    assert wf["robustness"]["windows"] == 5 and wf["bars"] == 365
    assert len(wf["equity"]["ts"]) == 365 - 120, "the stitched out-of-sample curve"
    windows = (await client.get(wf["robustness"]["runs_url"], headers=alice.headers)).json()
    assert windows["kind"] == "walk_forward" and [i["window"]["test"][0] for i in windows["items"]] == [
        120,
        180,
        240,
        300,
        360,
    ]
    assert windows["items"][0]["in_sample"] and windows["items"][0]["metrics"]

    mc = await run_to_completion(client, alice, body(kind="monte_carlo", monte_carlo={"n_sims": 200, "seed": 3}))
    bands = mc["robustness"]["bands"]
    assert set(bands) == {"total_return", "max_drawdown", "sharpe"}
    assert bands["sharpe"]["p5"] <= bands["sharpe"]["p50"] <= bands["sharpe"]["p95"]
    assert mc["robustness"]["seed"] == 3 and 0 <= mc["robustness"]["prob_loss"] <= 1
    assert (await client.get(f"/api/backtests/{mc['id']}/runs", headers=alice.headers)).status_code == 404
    kinds = (await client.get("/api/backtests?kind=sweep", headers=alice.headers)).json()
    assert [i["id"] for i in kinds["items"]] == [sweep["id"]]


async def test_failed_run_stores_nothing(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    # Buy-and-hold never closes a trade, and a trade reshuffle needs at least two: the job fails in the worker.
    r = await client.post(
        "/api/backtests",
        headers=alice.headers,
        json=body(strategy="buy_and_hold", params={}, kind="monte_carlo", monte_carlo={"method": "trade_reshuffle"}),
    )
    assert r.status_code == 202, r.text
    job = await wait_job(client, alice, r.json()["job_id"], {"succeeded", "failed"})
    assert job["status"] == "failed" and "2 closed trades" in job["error"]
    assert (await client.get(r.json()["links"]["backtest"], headers=alice.headers)).status_code == 404
    assert await _count(app, Backtest) == 0 and await _count(app, BacktestTrade) == 0
