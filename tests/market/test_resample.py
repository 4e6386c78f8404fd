"""Resampling: golden hand-built candles, refusal to fabricate finer data, gaps, UTC alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from aaiti.data import load_bundled
from aaiti.market.resample import between, completed, points_to_candles, resample
from aaiti.trading.candles import Candles

H = 3_600_000
DAY = 86_400_000
T0 = 1_600_000_000_000 // DAY * DAY  # 2020-09-13 00:00 UTC


def hourly(n: int, start: int = T0) -> Candles:
    ts = start + H * np.arange(n, dtype=np.int64)
    base = 100.0 + np.arange(n, dtype=np.float64)
    return Candles.from_arrays(ts, base, base + 2.0, base - 1.0, base + 0.5, np.full(n, 10.0))


def test_hourly_to_4h_golden() -> None:
    out = resample(hourly(8), H, "4h")
    assert out.ts.tolist() == [T0, T0 + 4 * H]
    assert out.open.tolist() == [100.0, 104.0]
    assert out.high.tolist() == [105.0, 109.0]
    assert out.low.tolist() == [99.0, 103.0]
    assert out.close.tolist() == [103.5, 107.5]
    assert out.volume.tolist() == [40.0, 40.0]


def test_daily_buckets_open_at_midnight_utc() -> None:
    c = hourly(28, start=T0 + 20 * H)  # 4 bars on day one (from 20:00 UTC), 24 on day two
    out = resample(c, H, "1d")
    assert out.ts.tolist() == [T0, T0 + DAY]
    assert out.open.tolist() == [100.0, 104.0]  # day two opens with the 00:00 UTC bar
    assert out.close.tolist() == [103.5, 127.5]
    assert resample(c, H, "1d", require_complete=True).ts.tolist() == [T0 + DAY]


def test_gaps_stay_gaps_and_unknown_volume_stays_unknown() -> None:
    c = hourly(12)
    keep = np.r_[0:4, 8:12]  # hours 4..7 missing
    holey = Candles(c.ts[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep])
    out = resample(holey, H, "4h")
    assert out.ts.tolist() == [T0, T0 + 8 * H]  # no candle invented for the empty bucket
    vol = holey.volume.copy()
    vol[1] = np.nan
    nan_vol = Candles(holey.ts, holey.open, holey.high, holey.low, holey.close, vol)
    v = resample(nan_vol, H, "4h").volume
    assert np.isnan(v[0])
    assert v[1] == 40.0


@pytest.mark.parametrize(
    ("source_ms", "timeframe"),
    [(H, "5m"), (H, "15m"), (H, "30m"), (4 * DAY, "1d"), (DAY, "4h"), (45 * 60_000, "1h")],
)
def test_refuses_to_claim_a_finer_or_misaligned_timeframe(source_ms: int, timeframe: str) -> None:
    c = Candles.from_arrays([0], [1.0], [1.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match=r"coarser|multiple"):
        resample(c, source_ms, timeframe)


def test_refuses_unknown_timeframe_and_misaligned_input() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        resample(hourly(2), H, "2h")
    shifted = hourly(3, start=T0 + 60_000)
    with pytest.raises(ValueError, match="aligned"):
        resample(shifted, H, "4h")


def test_same_timeframe_is_identity_and_empty_is_empty() -> None:
    c = hourly(5)
    assert resample(c, H, "1h") is c
    empty = Candles.from_arrays([], [], [], [], [], [])
    assert len(resample(empty, H, "1d")) == 0


def test_matches_pandas_on_real_hourly_data() -> None:
    real = load_bundled("BTC-USD_1h").slice(0, 24 * 40)
    ours = resample(real, H, "1d")
    frame = pd.DataFrame(
        {"open": real.open, "high": real.high, "low": real.low, "close": real.close, "volume": real.volume},
        index=pd.to_datetime(real.ts, unit="ms", utc=True),
    )
    ref = (
        frame.resample("1D")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    assert ours.ts.tolist() == (ref.index.astype("int64") // 1_000_000).tolist()
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(getattr(ours, col), ref[col].to_numpy(), rtol=1e-12)


def test_points_to_candles_and_windows() -> None:
    ts = np.array([T0 + 10, T0 + 200_000, T0 + 310_000, T0 + 1_000_000], dtype=np.int64)
    price = np.array([10.0, 12.0, 11.0, 9.0])
    c = points_to_candles(ts, price, 300_000)
    assert c.ts.tolist() == [T0, T0 + 300_000, T0 + 900_000]
    assert c.open.tolist() == [10.0, 11.0, 9.0]
    assert c.high.tolist() == [12.0, 11.0, 9.0]
    assert c.close.tolist() == [12.0, 11.0, 9.0]
    assert np.isnan(c.volume).all()
    assert between(c, T0 + 300_000, T0 + 900_000).ts.tolist() == [T0 + 300_000]
    assert completed(c, 300_000, T0 + 1_100_000).ts.tolist() == [T0, T0 + 300_000]
    with pytest.raises(ValueError, match="increasing"):
        points_to_candles(ts[::-1].copy(), price, 300_000)
