"""Strict payload validation (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from aaiti.market.coingecko import parse_retry_after
from aaiti.market.validation import (
    JumpGuard,
    PayloadRejected,
    decode_json,
    measure_granularity,
    parse_market_chart,
    parse_ohlc,
    parse_search,
    parse_simple_price,
)
from tests.fakes.coingecko import FAKE_NOW, load_fixture

NOW = FAKE_NOW


def reason(exc: pytest.ExceptionInfo[PayloadRejected]) -> str:
    return exc.value.reason


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b"<!DOCTYPE html><html></html>", "application/json", "html"),
        (b'{"a": 1}', "text/html; charset=utf-8", "html"),
        (b'{"bitcoin": {"usd": 3172', "application/json", "truncated_json"),
        (b'{"bitcoin": {"usd": NaN}}', "application/json", "bad_value"),
        (b'{"bitcoin": {"usd": Infinity}}', "application/json", "bad_value"),
        (b"error code: 1015", "text/plain", "not_json"),
        (b"   ", "application/json", "empty"),
        (b"\xff\xfe{}", "application/json", "not_json"),
    ],
)
def test_decode_json_refuses_what_is_not_json(body: bytes, ctype: str, expected: str) -> None:
    with pytest.raises(PayloadRejected) as exc:
        decode_json(body, ctype)
    assert reason(exc) == expected


def test_decode_json_accepts_ints_and_floats() -> None:
    assert decode_json(b"[[1709395200000, 61942, 62211.5, 61721, 61845]]", "application/json") == [
        [1709395200000, 61942, 62211.5, 61721, 61845]
    ]


def test_simple_price_fixture_parses_with_times() -> None:
    body = load_fixture("simple_price.json")
    ids = ["bitcoin", "ethereum", "not-a-coin"]
    result = parse_simple_price(body, ids, "usd", now=NOW, max_price=1e12)
    assert set(result.quotes) == {"bitcoin", "ethereum"}
    btc = result.quotes["bitcoin"]
    assert btc.price == 31723.09
    assert btc.change_24h_pct == pytest.approx(-0.30449422029805717)
    assert btc.observed_at == datetime(2021, 7, 17, 21, 0, 11, tzinfo=UTC)
    assert result.rejected == {}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({}, "schema"),
        ({"usd": "31723.09"}, "schema"),
        ({"usd": None}, "schema"),
        ({"usd": True}, "schema"),
        ({"usd": 0}, "bad_value"),
        ({"usd": -5.0}, "bad_value"),
        ({"usd": 1e300}, "bad_value"),
        ({"usd": 10**400}, "bad_value"),
        ({"usd": 1.0, "usd_24h_change": "3%"}, "schema"),
        ({"usd": 1.0, "last_updated_at": 1626555611000}, "timestamp"),  # milliseconds where seconds belong
        ({"usd": 1.0, "last_updated_at": 12}, "timestamp"),
        (None, "schema"),
        ([31723.09], "schema"),
    ],
)
def test_simple_price_rejects_bad_entries_one_by_one(entry: object, expected: str) -> None:
    body = {"bitcoin": entry, "ethereum": {"usd": 1898.28, "usd_24h_change": None}}
    result = parse_simple_price(body, ["bitcoin", "ethereum"], "usd", now=NOW, max_price=1e12)
    assert result.rejected == {"bitcoin": expected}
    assert result.quotes["ethereum"].price == 1898.28
    assert result.quotes["ethereum"].change_24h_pct is None
    assert result.quotes["ethereum"].observed_at is None


@pytest.mark.parametrize("body", [[], "bitcoin", None, 3])
def test_simple_price_rejects_non_object(body: object) -> None:
    with pytest.raises(PayloadRejected) as exc:
        parse_simple_price(body, ["bitcoin"], "usd", now=NOW, max_price=1e12)
    assert reason(exc) == "schema"


def test_market_chart_fixture_and_rejections() -> None:
    body = load_fixture("coins_bitcoin_market_chart_days_1.json")
    points = parse_market_chart(body, now=NOW, max_price=1e12)
    assert len(points.ts) == 288
    assert points.ts[-1] == 1626555643217
    assert points.price[-1] == 31723.09

    for broken, expected in [
        ({"prices": []}, "empty"),
        ({"market_caps": []}, "schema"),
        ({"prices": [[1626555643217]]}, "schema"),
        ({"prices": [[1626555643217, "1"]]}, "schema"),
        ({"prices": [[1626555643217, -1]]}, "bad_value"),
        ({"prices": [[1626555643217 + 10 * 86_400_000, 1.0]]}, "timestamp"),  # from the future
        ({"prices": [[1626555643, 1.0]]}, "timestamp"),  # seconds, not milliseconds
        ({"prices": [[1626555643217, 1.0], [1626555643217, 1.0]]}, "timestamp"),
    ]:
        with pytest.raises(PayloadRejected) as exc:
            parse_market_chart(broken, now=NOW, max_price=1e12)
        assert reason(exc) == expected, broken


def test_ohlc_fixture_and_inconsistent_rows() -> None:
    rows = parse_ohlc(load_fixture("coins_bitcoin_ohlc_days_7.json"), now=NOW, max_price=1e12)
    assert len(rows.close_ts) == 42
    assert (rows.high >= np.maximum(rows.open, rows.close)).all()
    for broken, expected in [
        ([], "empty"),
        ({}, "schema"),
        ([[1626555600000, 1, 2, 0.5]], "schema"),
        ([[1626555600000, 10, 9, 8, 9.5]], "bad_value"),  # high below open
        ([[1626555600000, 10, 12, 10.5, 11]], "bad_value"),  # low above open
        ([[1626555600000, 10, 12, 0, 11]], "bad_value"),
        ([[1626555600000, 1, 2, 1, 2], [1626553800000, 1, 2, 1, 2]], "timestamp"),
    ]:
        with pytest.raises(PayloadRejected) as exc:
            parse_ohlc(broken, now=NOW, max_price=1e12)
        assert reason(exc) == expected, broken


def test_search_skips_malformed_coins() -> None:
    body = {
        "coins": [
            {"id": "bitcoin", "symbol": "BTC", "name": "Bitcoin", "market_cap_rank": 1},
            {"id": "../etc/passwd", "symbol": "X", "name": "X"},
            {"id": "ok-coin", "symbol": 5, "name": "Five"},
            {"id": "wrapped-bitcoin", "symbol": "wbtc", "name": "Wrapped Bitcoin", "market_cap_rank": "12"},
            "junk",
        ]
    }
    found = parse_search(body)
    assert [(s.symbol, s.coin_id, s.market_cap_rank) for s in found] == [
        ("BTC", "bitcoin", 1),
        ("WBTC", "wrapped-bitcoin", None),
    ]
    with pytest.raises(PayloadRejected):
        parse_search({"exchanges": []})


def test_measure_granularity_snaps_and_refuses_irregular() -> None:
    chart = parse_market_chart(load_fixture("coins_bitcoin_market_chart_days_30.json"), now=NOW, max_price=1e12)
    assert measure_granularity(chart.ts, 300_000) == 3_600_000  # what was received, not what was expected
    ohlc = parse_ohlc(load_fixture("coins_bitcoin_ohlc_days_90.json"), now=NOW, max_price=1e12)
    assert measure_granularity(ohlc.close_ts, 14_400_000) == 4 * 86_400_000
    assert measure_granularity(np.array([1, 2], dtype=np.int64), 1800_000) == 1800_000
    with pytest.raises(PayloadRejected):
        measure_granularity(np.array([0, 7_000_000, 14_000_000, 21_000_000], dtype=np.int64), 3_600_000)


def test_jump_guard_holds_a_single_spike_and_accepts_a_confirmed_move() -> None:
    guard = JumpGuard(threshold=0.5, confirmations=2, tolerance=0.05)
    assert guard.check("btc", 100.0)
    assert guard.check("btc", 140.0)  # +40 %: ordinary
    assert not guard.check("btc", 140_000.0)  # 1000x: held
    assert guard.check("btc", 141.0)  # spike gone, normal value accepted, candidate dropped
    assert not guard.check("btc", 141_000.0)
    assert guard.check("btc", 141_500.0)  # seen twice in a row: accepted
    assert guard.last("btc") == 141_500.0
    assert not guard.check("btc", 10.0)
    assert not guard.check("btc", 20.0)  # a different level does not confirm the first sighting
    assert guard.check("btc", 20.5)


def test_retry_after_seconds_date_and_garbage() -> None:
    now = datetime(2021, 7, 17, 21, 0, 43, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Sat, 17 Jul 2021 21:01:13 GMT", now) == 30.0
    assert parse_retry_after("Sat, 17 Jul 2021 20:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None
