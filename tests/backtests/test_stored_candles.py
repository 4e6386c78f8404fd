"""Candles stored in the database (imports, backfills) are read in the request and handed to the worker inside the
job; bundled datasets travel as a reference. Same candles either way give the same fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from aaiti.backtests import service
from aaiti.core.tasks.models import Job
from aaiti.data import load_bundled
from aaiti.market import repository as market_repo
from aaiti.market.resample import between
from tests.backtests.helpers import body, run_to_completion
from tests.conftest import Account

START, END = "2019-01-01T00:00:00Z", "2019-03-01T00:00:00Z"


async def _store_hourly_btc(app: Any, source: str) -> int:
    """The bundled Bitstamp hourly candles of Jan-Feb 2019, stored as if a user had imported them."""
    hourly = load_bundled("BTC-USD_1h")
    lo = int(datetime(2018, 12, 1, tzinfo=UTC).timestamp() * 1000)
    hi = int(datetime(2019, 4, 1, tzinfo=UTC).timestamp() * 1000)
    candles = between(hourly, lo, hi)
    async with app.fastapi.state.core.db.unit_of_work() as uow:
        await market_repo.upsert_candles(
            uow.session,
            source=source,
            symbol="BTC",
            timeframe="1h",
            candles=candles,
            granularity_ms=3_600_000,
            now=datetime.now(UTC),
        )
        await uow.commit()
    return len(candles)


async def _job_params(app: Any, job_id: str) -> dict[str, Any]:
    import uuid

    async with app.fastapi.state.core.db.read() as session:
        job = await session.scalar(select(Job).where(Job.id == uuid.UUID(job_id)))
        assert job is not None
        return job.params


async def test_stored_and_bundled_candles(
    client: httpx.AsyncClient, app: Any, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _store_hourly_btc(app, "csv:mine")
    run = body(timeframe="4h", start=START, end=END, params={"fast": 5, "slow": 20})

    stored = await run_to_completion(client, alice, {**run, "source": "csv:mine"})
    src = stored["data_sources"][0]
    assert src["source"] == "csv:mine" and src["dataset"] is None
    assert src["stored_timeframe"] == "1h" and src["resampled"] is True
    assert stored["bars"] == 59 * 6
    params = await _job_params(app, str(stored["job_id"]))
    assert params["inputs"][0]["packed"]["n"] == 59 * 6, "stored candles travel inside the job"

    bundled = await run_to_completion(client, alice, {**run, "source": "bundled:bitstamp"})
    assert bundled["data_sources"][0]["dataset"] == "BTC-USD_1h"
    params = await _job_params(app, str(bundled["job_id"]))
    assert params["inputs"][0]["packed"] is None and params["inputs"][0]["dataset"] == "BTC-USD_1h"
    assert bundled["fingerprint_parts"] == stored["fingerprint_parts"], "same candles, same config: same fingerprint"

    # Unpinned, equal coverage: the bundled file wins (reproducible, nothing copied into the job).
    default = await run_to_completion(client, alice, run)
    assert default["data_sources"][0]["source"] == "bundled:bitstamp"

    # Stored candles are copied into the job, so their size is capped separately.
    monkeypatch.setattr(service, "MAX_INLINE_BARS", 100)
    r = await client.post("/api/backtests", headers=alice.headers, json={**run, "source": "csv:mine"})
    assert r.status_code == 422 and "stored (non-bundled) candles" in r.json()["detail"], r.text
    r = await client.post("/api/backtests", headers=alice.headers, json={**run, "source": "bundled:bitstamp"})
    assert r.status_code == 202, r.text


async def test_stored_series_outside_the_range_is_not_picked(
    client: httpx.AsyncClient, app: Any, alice: Account
) -> None:
    await _store_hourly_btc(app, "csv:mine")
    # Daily 2017: the stored hourly series (2018-12..2019-03) does not cover it, the bundled daily file does.
    r = await client.post("/api/backtests", headers=alice.headers, json=body(source="csv:mine"))
    assert r.status_code == 422 and "no BTC data between" in r.json()["detail"], r.text
    d = await run_to_completion(client, alice, body())
    assert d["data_sources"][0]["source"] == "bundled:bitstamp" and d["data_sources"][0]["dataset"] == "BTC-USD_1d"
