"""POST /api/market/backfill against the fake CoinGecko: the parent fetches through the shared client, a worker
process validates and resamples, ``on_success`` stores in the parent; the granularity actually received is
recorded and nothing finer is ever claimed. Bad requests answer 422, an exhausted budget 429."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from aaiti.app import create_app
from aaiti.core.clock import SystemClock
from tests.conftest import PASSWORD, make_settings
from tests.fakes.coingecko import FAKE_NOW_MS, FakeCoinGecko, load_fixture, running_fake

H = 3_600_000
CHART = "/coins/{id}/market_chart"


def hourly_chart_ending_now() -> dict[str, Any]:
    """The recorded 30-day hourly market_chart, shifted by whole hours so that it ends now (real clock)."""
    body = load_fixture("coins_bitcoin_market_chart_days_30.json")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    shift = (now_ms - FAKE_NOW_MS) // H * H
    return {key: [[t + shift, v] for t, v in points] for key, points in body.items()}


@pytest.fixture
async def gecko_app(tmp_path: Path, db_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Any]]:
    calls = getattr(request, "param", 600)
    async with running_fake(SystemClock()) as fake:
        fake.bodies[CHART] = hourly_chart_ending_now()
        settings = make_settings(
            tmp_path,
            db_path,
            market={"source": "coingecko", "coingecko_base_url": fake.base_url, "calls_per_minute": calls},
        )
        asgi = create_app(settings)
        async with LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30):
            yield asgi, fake


@pytest.fixture
async def http(gecko_app: tuple[Any, FakeCoinGecko]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gecko_app[0], client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post("/api/auth/register", json={"email": "fill@example.com", "password": PASSWORD})
        tokens = (await client.post("/api/auth/login", json={"email": "fill@example.com", "password": PASSWORD})).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield client


async def wait_job(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("backfill job did not finish in 30 s")


@pytest.mark.timeout(120)
async def test_backfill_stores_what_coingecko_delivered_with_its_granularity(
    http: httpx.AsyncClient, gecko_app: tuple[Any, FakeCoinGecko]
) -> None:
    _, fake = gecko_app
    start = (datetime.now(UTC) - timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
    r = await http.post(
        "/api/market/backfill",
        json={"symbol": "btc", "timeframe": "1h", "start": start.isoformat(), "store_timeframes": ["1h", "4h", "1d"]},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["symbol"], body["granularity"], body["kind"]) == ("BTC", "1h", "price_points")
    assert 230 <= body["candles"] <= 241
    assert fake.count(CHART) == 1
    (chart_call,) = [q for q in fake.requests if q.endpoint == CHART]
    assert chart_call.query["days"] == "14"
    job = await wait_job(http, body["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["granularity"] == "1h" and job["result"]["kind"] == "price_points"
    stored = job["result"]["stored"]
    assert stored["1h"] == body["candles"] and 57 <= stored["4h"] <= 60 and 9 <= stored["1d"] <= 10

    four = (
        await http.get("/api/market/candles", params={"symbol": "BTC", "timeframe": "4h", "source": "coingecko"})
    ).json()
    assert (four["source"], four["granularity"], four["resampled"]) == ("coingecko", "1h", False)
    assert len(four["items"]) == stored["4h"]
    assert all(c["v"] is None for c in four["items"]), "CoinGecko has no candle volume: null, never 0"
    assert all(c["t"] % (4 * H) == 0 for c in four["items"])
    hourly = (
        await http.get(
            "/api/market/candles",
            params={"symbol": "BTC", "timeframe": "1h", "start": start.isoformat(), "limit": 1000},
        )
    ).json()
    assert hourly["source"] == "coingecko", "CoinGecko data is preferred where it covers the range"
    assert len(hourly["items"]) == stored["1h"]
    fine = await http.get("/api/market/candles", params={"symbol": "BTC", "timeframe": "30m", "source": "coingecko"})
    assert fine.status_code == 422 and "finer" in fine.json()["detail"]

    # The same backfill again: served from the client's cache, stored idempotently.
    again = await http.post(
        "/api/market/backfill", json={"symbol": "BTC", "timeframe": "1h", "start": start.isoformat()}
    )
    assert again.status_code == 202 and fake.count(CHART) == 1
    assert (await wait_job(http, again.json()["job"]["id"]))["status"] == "succeeded"
    hourly_again = (
        await http.get(
            "/api/market/candles",
            params={"symbol": "BTC", "timeframe": "1h", "start": start.isoformat(), "limit": 1000},
        )
    ).json()
    assert hourly_again["items"] == hourly["items"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"symbol": "BTC", "timeframe": "5m", "start": "-30d"}, "too coarse"),
        ({"symbol": "BTC", "timeframe": "1d", "start": "-400d"}, "365 days"),
        ({"symbol": "BTC", "timeframe": "4h", "start": "-10d", "store_timeframes": ["1h"]}, "multiples"),
        ({"symbol": "BTC", "timeframe": "1h", "start": "-1d", "end": "-2d"}, "after start"),
        ({"symbol": "BTC", "timeframe": "2h", "start": "-1d"}, "timeframe"),
        ({"symbol": "BTC", "timeframe": "1h", "start": "2026-01-01T00:00:00"}, "timezone"),
        ({"symbol": "N@PE", "timeframe": "1h", "start": "-1d"}, "ticker"),
    ],
)
async def test_bad_backfills_are_422(
    http: httpx.AsyncClient, gecko_app: tuple[Any, FakeCoinGecko], body: dict[str, Any], word: str
) -> None:
    now = datetime.now(UTC)
    for key in ("start", "end"):
        if isinstance(body.get(key), str) and body[key].startswith("-"):
            body = {**body, key: (now - timedelta(days=int(body[key][1:-1]))).isoformat()}
    r = await http.post("/api/market/backfill", json=body)
    assert r.status_code == 422, r.text
    assert word in r.text.lower() or word in r.text
    assert (await http.get("/api/jobs")).json()["total"] == 0, "nothing was queued"


@pytest.mark.parametrize("gecko_app", [5], indirect=True)
async def test_backfills_share_a_capped_slice_of_the_budget(http: httpx.AsyncClient) -> None:
    # 5 calls/min leaves backfills one attempt per minute (a fifth of the budget), refused before any fetch.
    now = datetime.now(UTC)
    body = {
        "symbol": "BTC",
        "timeframe": "1h",
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now - timedelta(days=2)).isoformat(),
    }
    assert (await http.post("/api/market/backfill", json=body)).status_code == 422
    second = await http.post("/api/market/backfill", json=body)
    assert second.status_code == 429 and "Retry-After" in second.headers
    assert "budget" in second.json()["detail"]
