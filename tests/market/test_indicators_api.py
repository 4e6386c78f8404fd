"""POST /api/indicators: kernel indicators on a symbol's candles, warm-up as null, bad input as 422."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from aaiti.data import load_bundled
from aaiti.market.indicators_router import MAX_BARS, MAX_INDICATORS
from aaiti.market.repository import upsert_candles
from aaiti.market.resample import between
from aaiti.trading.indicators import compute_indicator
from tests.conftest import Account

DAILY = load_bundled("BTC-USD_1d")
START, END = "2017-01-01T00:00:00Z", "2018-01-01T00:00:00Z"


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC-USD",
        "timeframe": "1d",
        "start": START,
        "end": END,
        "indicators": [
            {"name": "rsi", "params": {"period": 14}},
            {"name": "macd"},
            {"name": "sma", "params": {"period": 50}, "label": "sma50"},
            {"name": "sma", "params": {"period": 10}, "label": "sma10"},
        ],
        **overrides,
    }


async def test_values_match_the_kernel_with_null_warm_up(client: httpx.AsyncClient, viewer: Account) -> None:
    r = await client.post("/api/indicators", headers=viewer.headers, json=_body())
    assert r.status_code == 200, r.text
    out = r.json()
    candles = between(DAILY, _ms(START), _ms(END))
    assert out["symbol"] == "BTC" and out["ts"] == candles.ts.tolist() and len(out["ts"]) == 365
    series = out["series"]
    assert {"rsi.value", "sma50.value", "sma10.value"} <= set(series)
    assert {k for k in series if k.startswith("macd.")} == {f"macd.{o}" for o in compute_indicator("macd", candles)}
    expected = {
        "rsi.value": compute_indicator("rsi", candles, {"period": 14})["value"],
        "sma50.value": compute_indicator("sma", candles, {"period": 50})["value"],
        "sma10.value": compute_indicator("sma", candles, {"period": 10})["value"],
    }
    for key, want in expected.items():
        got = series[key]
        warm = int(np.argmax(np.isfinite(want)))
        assert warm > 0 and got[:warm] == [None] * warm, key
        np.testing.assert_allclose(np.array(got[warm:], dtype=float), want[warm:], rtol=1e-12, err_msg=key)
    # Wilder RSI(14) needs 14 bars of changes; SMA(50) 49 bars before its first value.
    assert series["rsi.value"][13] is None and series["rsi.value"][14] is not None
    assert series["sma50.value"][48] is None and math.isclose(
        series["sma50.value"][49], float(candles.close[:50].mean())
    )
    info = {i["key"]: i for i in out["indicators"]}
    assert info["sma50"]["params"]["period"] == 50 and info["sma50"]["lookback"] == 49


async def test_limit_without_start_takes_the_latest_bars(client: httpx.AsyncClient, viewer: Account) -> None:
    body = _body(limit=30, indicators=[{"name": "ema", "params": {"period": 5}}])
    del body["start"]
    r = await client.post("/api/indicators", headers=viewer.headers, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["ts"]) == 30 and out["ts"][-1] == _ms(END) - 86_400_000
    assert out["series"]["ema.value"][:4] == [None] * 4 and out["series"]["ema.value"][4] is not None


async def test_stored_candles_are_used(client: httpx.AsyncClient, app: Any, viewer: Account) -> None:
    core = app.fastapi.state.core
    stored = DAILY.slice(800, 1000)
    async with core.db.unit_of_work() as uow:
        await upsert_candles(
            uow.session,
            source="csv",
            symbol="BTC",
            timeframe="1d",
            candles=stored,
            granularity_ms=86_400_000,
            now=core.clock.now(),
        )
        await uow.commit()
    start = datetime.fromtimestamp(int(stored.ts[0]) / 1000, tz=UTC).isoformat()
    body = _body(start=start, end=None, limit=1000, indicators=[{"name": "sma", "params": {"period": 3}}])
    r = await client.post("/api/indicators", headers=viewer.headers, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["source"] == "csv" and out["ts"] == stored.ts.tolist()
    want = compute_indicator("sma", stored, {"period": 3})["value"]
    np.testing.assert_allclose(np.array(out["series"]["sma.value"][2:], dtype=float), want[2:], rtol=1e-12)
    # A finer timeframe than the stored series would claim a granularity the data does not have.
    r = await client.post("/api/indicators", headers=viewer.headers, json={**body, "timeframe": "4h"})
    assert r.status_code == 422 and "finer" in r.text


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"indicators": [{"name": "nope"}]}, "unknown indicator"),
        ({"indicators": [{"name": "rsi", "params": {"period": 0}}]}, "period"),
        ({"indicators": [{"name": "rsi", "params": {"bogus": 1}}]}, "bogus"),
        ({"indicators": [{"name": "sma"}, {"name": "sma", "params": {"period": 3}}]}, "twice"),
        ({"indicators": [{"name": "sma"}] * (MAX_INDICATORS + 1)}, "indicators"),
        ({"indicators": []}, "indicators"),
        ({"start": END, "end": START}, "end must be after start"),
        ({"start": "2017-01-01T00:00:00"}, "start"),
        ({"limit": MAX_BARS + 1}, "limit"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"symbol": "NOSUCHCOIN"}, "NOSUCHCOIN"),
        ({"start": "2009-02-01T00:00:00Z", "end": "2009-03-01T00:00:00Z"}, "no 1d"),
    ],
)
async def test_bad_input_is_422_with_a_reason(
    client: httpx.AsyncClient, viewer: Account, overrides: dict[str, Any], reason: str
) -> None:
    r = await client.post("/api/indicators", headers=viewer.headers, json=_body(**overrides))
    assert r.status_code == 422, r.text
    assert reason in r.text, r.text


async def test_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/indicators", json=_body())
    assert r.status_code == 401
