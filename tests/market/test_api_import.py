"""CSV import through POST /api/market/import and ``aaiti import-candles``: what is accepted, what is rejected (with
line and reason), what is stored, and the limits (415, 413, 422)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from aaiti.cli import main as cli_main
from aaiti.cli import migrate
from tests.conftest import Account

H = 3_600_000
T0 = 1_559_347_200_000  # 2019-06-01T00:00Z

GOOD = "\n".join(
    [
        "timestamp_ms,open,high,low,close,volume",
        f"{T0},8500,8600,8400,8550,10",
        f"{T0 + H},8550,8700,8500,8650,12.5",
        f"{T0 + 2 * H},8650,8660,8600,8610,0",
    ]
)
BAD_LINES = [
    (f"{T0 + 3 * H},8610,8600,8620,8605,1", "high/low"),  # high below open
    (f"{T0 + 4 * H},-1,8600,8500,8550,1", "positive"),
    (f"{T0 + H},8550,8700,8500,8650,1", "not after"),  # goes back in time
    (f"{T0 // 1000 + 5 * 3600},8500,8600,8400,8550,1", "seconds"),
    (f"{T0 + 5 * H + 60_000},8500,8600,8400,8550,1", "aligned"),
    (f"{T0 + 6 * H},8500,8600,8400", "fields"),
    (f"{T0 + 7 * H},nan,8600,8400,8550,1", "finite"),
]


def csv_post(client: httpx.AsyncClient, who: Account, body: str | bytes, **params: str) -> Any:
    query = {"symbol": "BTC", "timeframe": "1h", **params}
    return client.post(
        "/api/market/import", params=query, content=body, headers={**who.headers, "content-type": "text/csv"}
    )


async def candles(client: httpx.AsyncClient, who: Account, source: str = "csv") -> list[dict[str, Any]]:
    r = await client.get(
        "/api/market/candles",
        params={"symbol": "BTC", "timeframe": "1h", "start": "2019-06-01T00:00:00Z", "source": source},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_import_reports_accepted_and_rejected_rows(client: httpx.AsyncClient, alice: Account) -> None:
    body = GOOD + "\n" + "\n".join(line for line, _ in BAD_LINES) + "\n"
    r = await csv_post(client, alice, body)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["symbol"], report["timeframe"], report["source"]) == ("BTC", "1h", "csv")
    assert report["accepted"] == 3 and report["written"] == 3
    assert report["rejected_count"] == len(BAD_LINES)
    for (line, reason), (_, word) in zip(
        [(r_["line"], r_["reason"]) for r_ in report["rejected"]], BAD_LINES, strict=True
    ):
        assert word in reason, (line, reason)
    assert [r_["line"] for r_ in report["rejected"]] == list(range(5, 5 + len(BAD_LINES)))
    stored = await candles(client, alice)
    assert [(c["t"], c["o"], c["h"], c["l"], c["c"], c["v"]) for c in stored] == [
        (T0, 8500, 8600, 8400, 8550, 10),
        (T0 + H, 8550, 8700, 8500, 8650, 12.5),
        (T0 + 2 * H, 8650, 8660, 8600, 8610, 0),
    ]


async def test_reimport_updates_instead_of_duplicating(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await csv_post(client, alice, GOOD)).status_code == 200
    corrected = GOOD.replace(f"{T0},8500,8600,8400,8550,10", f"{T0},8500,8600,8400,8560,11")
    assert (await csv_post(client, alice, corrected)).json()["accepted"] == 3
    stored = await candles(client, alice)
    assert len(stored) == 3
    assert (stored[0]["c"], stored[0]["v"]) == (8560, 11)


async def test_multipart_upload_and_labelled_source(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post(
        "/api/market/import",
        params={"symbol": "btc", "timeframe": "1h", "source": "csv:kraken"},
        files={"file": ("btc.csv", GOOD.encode(), "text/csv")},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "csv:kraken" and r.json()["symbol"] == "BTC"
    assert len(await candles(client, alice, "csv:kraken")) == 3


async def test_nothing_valid_is_422_with_the_reasons(client: httpx.AsyncClient, alice: Account) -> None:
    r = await csv_post(client, alice, "\n".join(line for line, _ in BAD_LINES[:2]))
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid" and "no valid candle rows" in body["detail"]
    assert body["rejected_count"] == 2
    assert [row["line"] for row in body["rejected"]] == [1, 2]
    assert (await csv_post(client, alice, "")).status_code == 422


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"source": "coingecko"}, "reserved"),
        ({"source": "bundled:bitstamp"}, "reserved"),
        ({"timeframe": "2h"}, "timeframe"),
        ({"symbol": "NOT A TICKER"}, "ticker"),
    ],
)
async def test_bad_import_parameters_are_422(
    client: httpx.AsyncClient, alice: Account, params: dict[str, str], word: str
) -> None:
    r = await csv_post(client, alice, GOOD, **params)
    assert r.status_code == 422, r.text
    assert word in r.text


async def test_wrong_media_type_encoding_and_size(client: httpx.AsyncClient, alice: Account) -> None:
    r = await client.post(
        "/api/market/import", params={"symbol": "BTC", "timeframe": "1h"}, json={"csv": GOOD}, headers=alice.headers
    )
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    assert (await csv_post(client, alice, b"\xff\xfe\x00garbage")).status_code == 422
    big = (GOOD + "\n") * 40_000  # > 1 MiB, the app's body cap
    r = await csv_post(client, alice, big)
    assert r.status_code == 413
    assert (await client.get("/api/market/symbols", headers=alice.headers)).json()["items"], "app still serves"


async def test_viewer_cannot_import(client: httpx.AsyncClient, viewer: Account) -> None:
    assert (await csv_post(client, viewer, GOOD)).status_code == 403


def test_cli_import_candles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.db"
    url = f"sqlite+aiosqlite:///{db}"
    migrate(url)
    monkeypatch.setenv("AAITI_DATABASE__URL", url)
    data = tmp_path / "btc.csv"
    data.write_text(GOOD + "\n" + BAD_LINES[0][0] + "\n")
    assert cli_main(["import-candles", str(data), "--symbol", "BTC", "--timeframe", "1h", "--source", "csv:cli"]) == 0
    out = capsys.readouterr()
    assert "imported 3 1h candles of BTC" in out.out and "1 rows rejected" in out.out
    assert "line 5:" in out.err and "high/low" in out.err
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT source, symbol, timeframe, close, granularity_ms FROM candles ORDER BY open_time"
    ).fetchall()
    audit = con.execute("SELECT action, user_agent FROM audit_logs WHERE action = 'market.import'").fetchall()
    con.close()
    assert rows == [("csv:cli", "BTC", "1h", c, H) for c in (8550.0, 8650.0, 8610.0)]
    assert audit == [("market.import", "aaiti-cli")]

    data.write_text(BAD_LINES[1][0] + "\n")
    assert cli_main(["import-candles", str(data), "--symbol", "BTC", "--timeframe", "1h"]) == 2
    assert "no valid candle rows" in capsys.readouterr().err
    assert cli_main(["import-candles", str(data), "--symbol", "BTC", "--timeframe", "1h", "--source", "coingecko"]) == 2
    assert cli_main(["import-candles", str(tmp_path / "missing.csv"), "--symbol", "BTC", "--timeframe", "1h"]) == 2
