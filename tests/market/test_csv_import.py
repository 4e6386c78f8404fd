"""CSV candle import: every bad row is reported with its line and reason; good rows survive."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import pytest

from aaiti.data import load_bundled
from aaiti.market.csv_import import parse_candles_csv

GOOD = "1600000000000,10,12,9,11,5\n1600003600000,11,13,10,12,6\n"


def test_header_and_good_rows() -> None:
    result = parse_candles_csv("timestamp_ms,open,high,low,close,volume\n" + GOOD)
    assert result.accepted_count == 2
    assert result.rejected == []
    assert result.candles.ts.tolist() == [1600000000000, 1600003600000]
    assert result.candles.close.tolist() == [11.0, 12.0]


def test_each_rule_rejects_with_line_number() -> None:
    text = "\n".join(
        [
            "timestamp_ms,open,high,low,close,volume",  # 1 header
            "1600000000000,10,12,9,11,5",  # 2 ok
            "1600000000000,10,12,9,11,5",  # 3 duplicate time
            "1599990000000,10,12,9,11,5",  # 4 goes back in time
            "1600003600000,10,12,9,11",  # 5 five fields
            "1600003600000,10,12,9,-11,5",  # 6 negative close
            "1600003600000,0,12,9,11,5",  # 7 zero open
            "1600003600000,10,9,8,11,5",  # 8 high below close
            "1600003600000,10,12,10.5,11,5",  # 9 low above open
            "1600003600000,nan,12,9,11,5",  # 10 not finite
            "1600003600000,10,inf,9,11,5",  # 11 not finite
            "1600003600000,10,12,9,11,-1",  # 12 negative volume
            "1600003600,10,12,9,11,5",  # 13 seconds
            "16000036000x0,10,12,9,11,5",  # 14 not an integer
            "1600003600000,ten,12,9,11,5",  # 15 not a number
            "",  # 16 blank: skipped silently
            "1600003600000,10,12,9,11,5",  # 17 ok
        ]
    )
    result = parse_candles_csv(text)
    assert result.candles.ts.tolist() == [1600000000000, 1600003600000]
    lines = {r.line: r.reason for r in result.rejected}
    assert sorted(lines) == list(range(3, 16))
    assert result.rejected_count == 13
    assert "not after the previous row" in lines[3]
    assert "not after the previous row" in lines[4]
    assert "expected 6 fields" in lines[5]
    assert "positive" in lines[6]
    assert "positive" in lines[7]
    assert "high/low" in lines[8]
    assert "high/low" in lines[9]
    assert "not finite" in lines[10]
    assert "not finite" in lines[11]
    assert "volume" in lines[12]
    assert "seconds" in lines[13]
    assert "whole number" in lines[14]
    assert "not a number" in lines[15]


def test_timeframe_alignment_and_future_rows() -> None:
    text = "1599998400000,10,12,9,11,5\n1599998460000,10,12,9,11,5\n1600005600000,10,12,9,11,5\n"
    result = parse_candles_csv(text, timeframe="1h", max_ts_ms=1600002000000)
    assert result.accepted_count == 1
    assert [r.line for r in result.rejected] == [2, 3]
    assert "aligned" in result.rejected[0].reason
    assert "future" in result.rejected[1].reason
    with pytest.raises(ValueError, match="timeframe"):
        parse_candles_csv(text, timeframe="7m")


def test_row_cap_and_rejection_report_cap() -> None:
    with pytest.raises(ValueError, match="rows"):
        parse_candles_csv(GOOD, max_rows=1)
    bad = "\n".join("x,1,1,1,1,1" for _ in range(1500))
    result = parse_candles_csv(bad)
    assert result.rejected_count == 1500
    assert len(result.rejected) == 1000
    assert result.accepted_count == 0


def test_round_trips_a_bundled_file() -> None:
    raw = resources.files("aaiti.data").joinpath("LTC-USD_1d.csv.gz").read_bytes()
    result = parse_candles_csv(gzip.decompress(raw).decode("ascii"), timeframe="1d")
    expected = load_bundled("LTC-USD_1d")
    assert result.rejected == []
    np.testing.assert_array_equal(result.candles.ts, expected.ts)
    np.testing.assert_array_equal(result.candles.close, expected.close)
