"""/api/market over HTTP (replay source, a fresh database per test): prices from the feed's cache, stored candles
with on-the-fly resampling and paging, symbols, search, status, readiness, and every bad input answering 422."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from aaiti.core.audit import AuditLog
from aaiti.data import load_bundled
from aaiti.market import repository as repo
from aaiti.market.models import Candle
from aaiti.market.validation import to_ms
from aaiti.trading.candles import Candles
from tests.conftest import Account

H = 3_600_000
D = 24 * H
#: A slice of the real Bitstamp hourly file: 2019-06-01 .. 2019-06-11 (240 bars), small and fast to store.
BTC_1H_START = to_ms(datetime(2019, 6, 1, tzinfo=UTC))


def btc_hourly_slice(days: int = 10) -> Candles:
    full = load_bundled("BTC-USD_1h")
    lo = int(np.searchsorted(full.ts, BTC_1H_START))
    hi = int(np.searchsorted(full.ts, BTC_1H_START + days * D))
    return full.slice(lo, hi)


async def store(app: Any, source: str, symbol: str, timeframe: str, candles: Candles, granularity_ms: int) -> None:
    async with app.fastapi.state.core.db.unit_of_work() as uow:
        await repo.upsert_candles(
            uow.session,
            source=source,
            symbol=symbol,
            timeframe=timeframe,
            candles=candles,
            granularity_ms=granularity_ms,
            now=datetime.now(UTC),
        )
        await uow.commit()


@pytest.fixture
async def stored(app: Any) -> Candles:
    """BTC 1h (10 days) from bundled:bitstamp and ETH 1d (all of it)."""
    hourly = btc_hourly_slice()
    assert len(hourly) == 240
    await store(app, "bundled:bitstamp", "BTC", "1h", hourly, H)
    await store(app, "bundled:bitstamp", "ETH", "1d", load_bundled("ETH-USD_1d"), D)
    return hourly


def invalid(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid"
    for word in words:
        assert word in body["detail"], body["detail"]


# ------------------------------------------------------------------------------------------------- prices


async def test_prices_come_from_the_feed_with_source_and_freshness(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.get("/api/market/prices", headers=alice.headers)
    assert r.status_code == 200, r.text
    items = {p["symbol"]: p for p in r.json()["items"]}
    assert set(items) == {"BTC", "ETH", "LTC"}
    for p in items.values():
        assert p["source"] == "replay"
        assert p["stale"] is False
        assert p["price"] > 0
        assert datetime.fromisoformat(p["as_of"]).tzinfo is not None
    # The replay plays the real Bitstamp hourly file from its first bar (2018-05-15): BTC is within that bar.
    first = load_bundled("BTC-USD_1h")
    assert first.low[0] <= items["BTC"]["price"] <= first.high[0]

    r = await client.get("/api/market/prices", params={"symbols": "btc,ETH-USD"}, headers=alice.headers)
    assert [p["symbol"] for p in r.json()["items"]] == ["BTC", "ETH"]


async def test_price_input_is_validated(client: httpx.AsyncClient, alice: Account) -> None:
    invalid(await client.get("/api/market/prices", params={"symbols": "B@D"}, headers=alice.headers), "ticker")
    invalid(await client.get("/api/market/prices", params={"symbols": "DOGE"}, headers=alice.headers), "replay")
    invalid(await client.get("/api/market/prices", params={"symbols": "BTC-EUR"}, headers=alice.headers), "USD")
    invalid(await client.get("/api/market/prices", params={"symbols": ","}, headers=alice.headers), "symbol")
    many = ",".join(["BTC"] * 51)
    invalid(await client.get("/api/market/prices", params={"symbols": many}, headers=alice.headers), "at most")


@pytest.mark.parametrize("settings_overrides", [{"market": {"symbols": ["BTC"], "poll_interval_s": 30}}])
async def test_unpolled_symbol_is_503_then_fetched_by_the_poller(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.get("/api/market/prices", params={"symbols": "ETH"}, headers=alice.headers)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable"
    assert "Retry-After" in r.headers
    # The request registered interest: the poller fetches ETH soon, long before its 30 s cadence.
    for _ in range(50):
        r = await client.get("/api/market/prices", params={"symbols": "ETH,BTC"}, headers=alice.headers)
        if r.status_code == 200 and len(r.json()["items"]) == 2:
            break
        await asyncio.sleep(0.1)
    assert [p["symbol"] for p in r.json()["items"]] == ["ETH", "BTC"]


@pytest.mark.parametrize("settings_overrides", [{"market": {"symbols": ["BTC"], "poll_interval_s": 30}}])
async def test_partial_answer_lists_what_is_not_priced_yet(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.get("/api/market/prices", params={"symbols": "BTC,LTC"}, headers=alice.headers)
    assert r.status_code == 200
    assert [p["symbol"] for p in r.json()["items"]] == ["BTC"]
    assert r.json()["unavailable"] == ["LTC"]


# ------------------------------------------------------------------------------------------------ candles


async def test_native_candles_with_granularity_and_source(
    client: httpx.AsyncClient, alice: Account, stored: Candles
) -> None:
    r = await client.get(
        "/api/market/candles",
        params={"symbol": "BTC", "timeframe": "1h", "start": "2019-06-01T00:00:00Z", "limit": 5},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["symbol"], body["timeframe"], body["source"]) == ("BTC", "1h", "bundled:bitstamp")
    assert (body["granularity"], body["granularity_ms"], body["resampled"]) == ("1h", H, False)
    assert [c["t"] for c in body["items"]] == stored.ts[:5].tolist()
    first = body["items"][0]
    assert (first["o"], first["h"], first["l"], first["c"], first["v"]) == (
        stored.open[0],
        stored.high[0],
        stored.low[0],
        stored.close[0],
        stored.volume[0],
    )
    assert body["next_start"] == int(stored.ts[5])


async def test_forward_paging_walks_the_whole_series_once(
    client: httpx.AsyncClient, alice: Account, stored: Candles
) -> None:
    seen: list[int] = []
    params: dict[str, Any] = {"symbol": "BTC", "timeframe": "1h", "start": "2019-06-01T00:00:00Z", "limit": 70}
    for _ in range(10):
        body = (await client.get("/api/market/candles", params=params, headers=alice.headers)).json()
        seen += [c["t"] for c in body["items"]]
        if body["next_start"] is None:
            break
        params["start"] = datetime.fromtimestamp(body["next_start"] / 1000, tz=UTC).isoformat()
    assert seen == stored.ts.tolist()


async def test_latest_page_and_backward_paging(client: httpx.AsyncClient, alice: Account, stored: Candles) -> None:
    body = (
        await client.get(
            "/api/market/candles", params={"symbol": "BTC", "timeframe": "1h", "limit": 100}, headers=alice.headers
        )
    ).json()
    assert [c["t"] for c in body["items"]] == stored.ts[-100:].tolist()
    assert body["prev_end"] == int(stored.ts[-100])
    end = datetime.fromtimestamp(body["prev_end"] / 1000, tz=UTC).isoformat()
    body = (
        await client.get(
            "/api/market/candles",
            params={"symbol": "BTC", "timeframe": "1h", "limit": 200, "end": end},
            headers=alice.headers,
        )
    ).json()
    assert [c["t"] for c in body["items"]] == stored.ts[:-100].tolist()
    assert body["prev_end"] is None


async def test_coarser_timeframe_is_resampled_from_finer_data(
    client: httpx.AsyncClient, alice: Account, stored: Candles
) -> None:
    r = await client.get(
        "/api/market/candles",
        params={"symbol": "BTC", "timeframe": "4h", "start": "2019-06-01T00:00:00Z", "limit": 500},
        headers=alice.headers,
    )
    body = r.json()
    assert (body["timeframe"], body["granularity"], body["resampled"]) == ("4h", "1h", True)
    assert len(body["items"]) == 60
    # Check one candle by hand: 2019-06-02 08:00-12:00 UTC from the four hourly bars.
    t = to_ms(datetime(2019, 6, 2, 8, tzinfo=UTC))
    i = int(np.searchsorted(stored.ts, t))
    bars = stored.slice(i, i + 4)
    candle = next(c for c in body["items"] if c["t"] == t)
    assert candle["o"] == bars.open[0] and candle["c"] == bars.close[-1]
    assert candle["h"] == bars.high.max() and candle["l"] == bars.low.min()
    assert candle["v"] == pytest.approx(bars.volume.sum())

    daily = (
        await client.get(
            "/api/market/candles",
            params={"symbol": "BTC", "timeframe": "1d", "start": "2019-06-01T00:00:00Z"},
            headers=alice.headers,
        )
    ).json()
    assert [c["t"] for c in daily["items"]] == [BTC_1H_START + k * D for k in range(10)]


async def test_resampling_keeps_only_complete_buckets(client: httpx.AsyncClient, alice: Account, app: Any) -> None:
    hourly = btc_hourly_slice(2)
    keep = np.r_[0:30, 31:48]  # hour 30 missing: the bucket 2019-06-02 04:00-08:00 is incomplete
    gappy = Candles(*(getattr(hourly, f)[keep] for f in ("ts", "open", "high", "low", "close", "volume")))
    await store(app, "csv", "XRP", "1h", gappy, H)
    body = (
        await client.get(
            "/api/market/candles",
            params={"symbol": "XRP", "timeframe": "4h", "start": "2019-06-01T00:00:00Z"},
            headers=alice.headers,
        )
    ).json()
    starts = [c["t"] for c in body["items"]]
    assert BTC_1H_START + 28 * H not in starts
    assert len(starts) == 11


async def test_finer_than_the_data_is_refused(client: httpx.AsyncClient, alice: Account, stored: Candles) -> None:
    invalid(
        await client.get("/api/market/candles", params={"symbol": "ETH", "timeframe": "1h"}, headers=alice.headers),
        "finer",
    )
    invalid(
        await client.get("/api/market/candles", params={"symbol": "BTC", "timeframe": "5m"}, headers=alice.headers),
        "finer",
    )


async def test_user_imports_never_replace_the_default_series(
    client: httpx.AsyncClient, alice: Account, app: Any, stored: Candles
) -> None:
    fake = Candles(stored.ts, stored.open * 2, stored.high * 2, stored.low * 2, stored.close * 2, stored.volume)
    await store(app, "csv:mine", "BTC", "1h", fake, H)
    params = {"symbol": "BTC", "timeframe": "1h", "start": "2019-06-01T00:00:00Z", "limit": 1}
    default = (await client.get("/api/market/candles", params=params, headers=alice.headers)).json()
    assert default["source"] == "bundled:bitstamp" and default["items"][0]["o"] == stored.open[0]
    mine = (
        await client.get("/api/market/candles", params={**params, "source": "csv:mine"}, headers=alice.headers)
    ).json()
    assert mine["source"] == "csv:mine" and mine["items"][0]["o"] == 2 * stored.open[0]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"symbol": "BTC", "timeframe": "2h"}, ("timeframe",)),
        ({"symbol": "B@D", "timeframe": "1h"}, ("ticker",)),
        ({"symbol": "SOL", "timeframe": "1h"}, ("no stored candles",)),
        ({"symbol": "BTC", "timeframe": "1h", "source": "coingecko"}, ("no stored candles",)),
        ({"symbol": "BTC", "start": "2019-06-02T00:00:00Z", "end": "2019-06-01T00:00:00Z"}, ("after start",)),
        ({"symbol": "BTC", "start": "2019-06-02T00:00:00"}, ("time zone",)),
        ({"symbol": "BTC", "start": "1990-01-01T00:00:00Z"}, ("outside",)),
        ({"symbol": "BTC", "end": "2999-01-01T00:00:00Z"}, ("outside",)),
        ({"symbol": "BTC", "start": "yesterday"}, ()),
        ({"symbol": "BTC", "limit": 0}, ()),
        ({"symbol": "BTC", "limit": 5001}, ()),
        ({"timeframe": "1h"}, ()),
    ],
)
async def test_bad_candle_queries_are_422(
    client: httpx.AsyncClient, alice: Account, stored: Candles, params: dict[str, Any], words: tuple[str, ...]
) -> None:
    invalid(await client.get("/api/market/candles", params=params, headers=alice.headers), *words)


# --------------------------------------------------------------------------------- symbols, search, status


async def test_symbols_list_names_ids_and_stored_history(
    client: httpx.AsyncClient, alice: Account, stored: Candles
) -> None:
    items = {s["symbol"]: s for s in (await client.get("/api/market/symbols", headers=alice.headers)).json()["items"]}
    assert items["BTC"]["coingecko_id"] == "bitcoin" and items["BTC"]["name"] == "Bitcoin"
    assert items["BTC"]["live"] is True and items["SOL"]["live"] is False
    history = items["BTC"]["history"]
    assert [(h["source"], h["timeframe"], h["count"], h["granularity"]) for h in history] == [
        ("bundled:bitstamp", "1h", 240, "1h")
    ]
    assert datetime.fromisoformat(history[0]["first"]) == datetime(2019, 6, 1, tzinfo=UTC)


async def test_search_uses_the_active_source(client: httpx.AsyncClient, alice: Account) -> None:
    body = (await client.get("/api/market/search", params={"q": "bit"}, headers=alice.headers)).json()
    assert body["source"] == "replay"
    assert [h["symbol"] for h in body["items"]] == ["BTC"]
    assert (await client.get("/api/market/search", params={"q": ""}, headers=alice.headers)).status_code == 422
    assert (await client.get("/api/market/search", params={"q": "x" * 51}, headers=alice.headers)).status_code == 422


async def test_status_and_readiness_report_the_active_source(client: httpx.AsyncClient, alice: Account) -> None:
    body = (await client.get("/api/market/status", headers=alice.headers)).json()
    assert (body["source"], body["mode"], body["stale"], body["breaker_state"]) == ("replay", "replay", False, "none")
    assert body["budget_used"] is None and body["budget_limit"] is None
    assert body["data_age_s"] is not None and body["data_age_s"] < 5
    assert body["feed"]["symbols"] == ["BTC", "ETH", "LTC"] and body["feed"]["polls"] >= 1
    assert body["bundled"]["state"] == "disabled"
    ready = (await client.get("/api/health/ready")).json()
    assert ready["checks"]["market"]["ok"] is True
    assert ready["checks"]["market"]["source"] == "replay"


async def test_backfill_needs_coingecko(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post(
        "/api/market/backfill",
        json={"symbol": "BTC", "timeframe": "1h", "start": "2026-01-01T00:00:00Z"},
        headers=alice.headers,
    )
    assert r.status_code == 503, r.text
    assert "CoinGecko" in r.json()["detail"]


async def test_candles_table_upserts_are_idempotent(app: Any) -> None:
    hourly = btc_hourly_slice(3)
    for _ in range(2):
        await store(app, "bundled:bitstamp", "BTC", "1h", hourly, H)
    changed = Candles(hourly.ts, hourly.open, hourly.high * 1.01, hourly.low, hourly.close, hourly.volume)
    await store(app, "bundled:bitstamp", "BTC", "1h", changed, H)
    async with app.fastapi.state.core.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Candle)) == len(hourly)
        got = await repo.fetch_series(session, source="bundled:bitstamp", symbol="BTC", timeframe="1h")
    assert np.array_equal(got.candles.high, hourly.high * 1.01), "the newer data wins on conflict"
    async with app.fastapi.state.core.db.unit_of_work() as uow:
        kept = await repo.upsert_candles(
            uow.session,
            source="bundled:bitstamp",
            symbol="BTC",
            timeframe="1h",
            candles=hourly,
            granularity_ms=H,
            now=datetime.now(UTC),
            replace=False,
        )
        await uow.commit()
    assert kept == 0, "ON CONFLICT DO NOTHING writes nothing that is already there"


async def test_import_is_audited(client: httpx.AsyncClient, alice: Account, app: Any) -> None:
    csv = "timestamp_ms,open,high,low,close,volume\n1559347200000,8500,8600,8400,8550,10\n"
    r = await client.post(
        "/api/market/import",
        params={"symbol": "BTC", "timeframe": "1h"},
        content=csv,
        headers={**alice.headers, "content-type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    async with app.fastapi.state.core.db.read() as session:
        rows = (await session.scalars(select(AuditLog).where(AuditLog.action == "market.import"))).all()
    assert len(rows) == 1
    assert str(rows[0].user_id) == alice.id
    assert rows[0].resource_id == "csv/BTC/1h"
    assert rows[0].details is not None and rows[0].details["accepted"] == 1


def test_market_settings_mapping(tmp_path: Any) -> None:
    from aaiti.core.config import ConfigError, Settings
    from aaiti.market.runtime import coingecko_config, effective_settings, stale_after

    test_env = Settings(env="test", var_dir=tmp_path)
    assert (effective_settings(test_env).source, effective_settings(test_env).load_bundled) == ("replay", False)
    explicit = Settings(env="test", var_dir=tmp_path, market={"source": "auto", "load_bundled": True})
    assert (effective_settings(explicit).source, effective_settings(explicit).load_bundled) == ("auto", True)
    production = Settings(env="production", var_dir=tmp_path)
    assert (effective_settings(production).source, effective_settings(production).load_bundled) == ("auto", True)

    pro = Settings(var_dir=tmp_path, market={"coingecko_key_kind": "pro", "coingecko_api_key": "CG-abcdefgh12"})
    assert coingecko_config(pro.market).resolved_base_url == "https://pro-api.coingecko.com/api/v3"
    local = Settings(var_dir=tmp_path, market={"coingecko_base_url": "http://127.0.0.1:9/api/v3/"})
    cfg = coingecko_config(local.market)
    assert cfg.resolved_base_url == "http://127.0.0.1:9/api/v3"
    assert (cfg.budget_calls, cfg.budget_period_s, cfg.stale_after_s) == (10, 60.0, 120.0)
    assert stale_after(local.market) == {"replay": 60.0, "coingecko": 120.0}
    with pytest.raises(ConfigError, match="api_key"):
        coingecko_config(Settings(var_dir=tmp_path, market={"coingecko_api_key": "CG-abcdefgh12"}).market)


async def test_stored_coingecko_key_is_used_when_env_has_none(app: Any, admin: Any, client: Any) -> None:
    from aaiti.market.runtime import _stored_api_key

    db = app.fastapi.state.core.db
    assert await _stored_api_key(db) is None
    r = await client.put("/api/settings/coingecko.api_key", headers=admin.headers, json={"value": "CG-storedkey123"})
    assert r.status_code == 200
    assert await _stored_api_key(db) == "CG-storedkey123"
