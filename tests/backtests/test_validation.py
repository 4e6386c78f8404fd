"""Bad run requests answer 422 with the reason, before anything is stored (no job, no result, no audit row)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from aaiti.backtests import service
from aaiti.core.audit import AuditLog
from aaiti.core.tasks.models import Job
from tests.backtests.helpers import body
from tests.conftest import Account

SWEEP = {"kind": "sweep", "sweep": {"grid": {"fast": [5, 10]}}}
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("end before start", {"start": "2018-01-01T00:00:00Z", "end": "2017-01-01T00:00:00Z"}, "end must be after start"),
    ("empty range", {"start": "2017-01-01T00:00:00Z", "end": "2017-01-01T00:00:00Z"}, "end must be after start"),
    ("naive datetime", {"start": "2017-01-01T00:00:00"}, "timezone"),
    ("before 2009", {"start": "1970-01-01T00:00:00Z"}, "2009"),
    ("end in the future", {"end": "2999-01-01T00:00:00Z"}, "future"),
    ("unknown symbol", {"symbols": ["NOPE"]}, "unknown symbol 'NOPE'"),
    ("not a ticker", {"symbols": ["BTC/EUR"]}, "only USD"),
    ("too many symbols", {"symbols": ["BTC"] * 11}, "symbols"),
    (
        "no data in range",
        {"symbols": ["ETH"], "start": "2021-01-01T00:00:00Z", "end": "2021-06-01T00:00:00Z"},
        "no ETH data between",
    ),
    ("finer than the data", {"symbols": ["ETH"], "timeframe": "1h"}, "finer than the ETH data"),
    ("finer than any data", {"timeframe": "5m"}, "finer than the BTC data"),
    ("unknown timeframe", {"timeframe": "2h"}, "timeframe"),
    ("unknown source", {"source": "coingecko"}, "available sources"),
    ("unknown strategy", {"strategy": "get_rich"}, "unknown strategy"),
    ("param below its bound", {"params": {"fast": 0, "slow": 30}}, "params.fast"),
    ("param above its bound", {"params": {"fast": 10, "slow": 5000}}, "params.slow"),
    ("param of the wrong type", {"params": {"fast": "ten"}}, "params.fast"),
    ("unknown param", {"params": {"fast": 10, "bogus": 1}}, "params.bogus"),
    ("short without margin", {"params": {"short": True}}, "allow_short"),
    ("fee out of range", {"config": {"fees": {"taker_bps": -1}}}, "taker_bps"),
    ("unknown config key", {"config": {"leverage": 100}}, "leverage"),
    ("stop-loss of 100 %", {"config": {"stops": {"stop_loss": 1.0}}}, "stop_loss"),
    ("weights for other symbols", {"config": {"weights": {"ETH": 1.0}}}, "weights"),
    ("warm-up longer than the range", {"params": {"fast": 10, "slow": 300}, "end": "2017-03-01T00:00:00Z"}, "warm-up"),
    ("settings of another kind", {"sweep": {"grid": {"fast": [5]}}}, "for a run of kind 'single'"),
    ("sweep without a grid", {"kind": "sweep"}, "needs its 'sweep' settings"),
    ("grid on an unknown parameter", {**SWEEP, "sweep": {"grid": {"speed": [1]}}}, "no parameter 'speed'"),
    ("grid asks for shorts without margin", {**SWEEP, "sweep": {"grid": {"short": [False, True]}}}, "grid.short"),
    ("grid value out of range", {**SWEEP, "sweep": {"grid": {"fast": [5, 0]}}}, "grid.fast"),
    ("grid without a valid set", {**SWEEP, "sweep": {"grid": {"fast": [50], "slow": [20]}}}, "no parameter set"),
    (
        "sweep sorted by an unknown metric",
        {**SWEEP, "sweep": {"grid": {"fast": [5]}, "metric": "luck"}},
        "unknown metric",
    ),
    (
        "grid too large",
        {**SWEEP, "sweep": {"grid": {"fast": list(range(1, 61)), "slow": list(range(100, 160))}}},
        "at most",
    ),
    (
        "walk-forward windows longer than the data",
        {"kind": "walk_forward", "walk_forward": {"grid": {"fast": [5]}, "train_bars": 300, "test_bars": 100}},
        "exceeds the 365 bars",
    ),
    (
        "overlapping walk-forward windows",
        {
            "kind": "walk_forward",
            "walk_forward": {"grid": {"fast": [5]}, "train_bars": 100, "test_bars": 50, "step_bars": 10},
        },
        "may not overlap",
    ),
    (
        "Monte Carlo blocks longer than the range",
        {
            "kind": "monte_carlo",
            "monte_carlo": {"block_days": 100},
            "end": "2017-03-01T00:00:00Z",
            "params": {"fast": 5, "slow": 20},
        },
        "block_days 100 exceeds the 59 days",
    ),
    ("Monte Carlo with too many paths", {"kind": "monte_carlo", "monte_carlo": {"n_sims": 100_000}}, "n_sims"),
]


async def test_bad_requests_answer_422_and_store_nothing(
    client: httpx.AsyncClient, app: Any, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    for label, overrides, reason in CASES:
        r = await client.post("/api/backtests", headers=alice.headers, json=body(**overrides))
        assert r.status_code == 422, (label, r.status_code, r.text)
        answer = r.json()
        assert answer["error"] == "invalid", label
        assert reason in answer["detail"] or reason in str(answer.get("errors")), (label, answer)

    # The bar cap (a module setting): 365 daily bars against a cap of 100.
    monkeypatch.setattr(service, "MAX_BARS", 100)
    r = await client.post("/api/backtests", headers=alice.headers, json=body())
    assert r.status_code == 422 and "cap of 100" in r.json()["detail"], r.text
    # Two symbols with 60 daily bars each: 120 bars in all.
    two = await client.post(
        "/api/backtests",
        headers=alice.headers,
        json=body(symbols=["BTC", "ETH"], start="2018-01-01T00:00:00Z", end="2018-03-02T00:00:00Z"),
    )
    assert two.status_code == 422 and "2 symbol(s)" in two.json()["detail"], two.text

    async with app.fastapi.state.core.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
        assert await session.scalar(select(func.count()).where(AuditLog.action == "backtests.run")) == 0
    assert (await client.get("/api/backtests", headers=alice.headers)).json()["total"] == 0


async def test_viewer_cannot_run(client: httpx.AsyncClient, viewer: Account) -> None:
    r = await client.post("/api/backtests", headers=viewer.headers, json=body())
    assert r.status_code == 403
