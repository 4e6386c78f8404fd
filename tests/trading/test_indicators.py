"""Indicators against TA-Lib on bundled real candles, registry contract, warm-up and causality."""

from __future__ import annotations

import json

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aaiti.data import load_bundled
from aaiti.trading import indicators as ind
from aaiti.trading.candles import Candles
from aaiti.trading.indicators import INDICATORS, compute_indicator

DATASETS = ["BTC-USD_1d", "ETH-USD_1d", "LTC-USD_1d", "BTC-USD_1d_coinbase", "BTC-USD_1h", "BTC-USD_1h_coinbase"]


def _load(name: str) -> Candles:
    c = load_bundled(name)
    # Hourly sets are long; 8000 bars cover every regime we need and keep the suite fast.
    return c.slice(0, 8000) if "1h" in name else c


def assert_matches(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-9) -> None:
    """NaN exactly where the reference is NaN (warm-up), and equal within ``rtol`` (scaled to the series)."""
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    scale = float(np.nanmax(np.abs(ref))) if np.any(~np.isnan(ref)) else 1.0
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * scale, equal_nan=True)


@pytest.fixture(params=DATASETS, scope="module")
def candles(request: pytest.FixtureRequest) -> Candles:
    return _load(request.param)


def test_moving_averages(candles: Candles) -> None:
    c = candles.close
    for p in (2, 10, 30, 200):
        assert_matches(ind.sma(c, p), talib.SMA(c, p))
        assert_matches(ind.ema(c, p), talib.EMA(c, p))
        assert_matches(ind.wma(c, p), talib.WMA(c, p))


def test_oscillators(candles: Candles) -> None:
    c, h, lo, v = candles.close, candles.high, candles.low, candles.volume
    for p in (2, 14, 30):
        assert_matches(ind.rsi(c, p), talib.RSI(c, p))
        assert_matches(ind.cmo(c, p), talib.CMO(c, p))
        assert_matches(ind.willr(h, lo, c, p), talib.WILLR(h, lo, c, p))
        assert_matches(ind.cci(h, lo, c, p), talib.CCI(h, lo, c, p), rtol=1e-7)
        assert_matches(ind.mfi(h, lo, c, v, p), talib.MFI(h, lo, c, v, p), rtol=1e-8)
        assert_matches(ind.roc(c, p), talib.ROC(c, p))
        for ours, ref in zip(ind.aroon(h, lo, p), talib.AROON(h, lo, p), strict=True):
            assert_matches(ours, ref)
    for ours, ref in zip(ind.stoch(h, lo, c, 14, 3, 3), talib.STOCH(h, lo, c, 14, 3, 0, 3, 0), strict=True):
        assert_matches(ours, ref, rtol=1e-8)
    for ours, ref in zip(ind.stoch(h, lo, c, 5, 1, 4), talib.STOCH(h, lo, c, 5, 1, 0, 4, 0), strict=True):
        assert_matches(ours, ref, rtol=1e-8)
    assert_matches(ind.ultosc(h, lo, c), talib.ULTOSC(h, lo, c, 7, 14, 28), rtol=1e-8)
    assert_matches(ind.ultosc(h, lo, c, 3, 5, 9), talib.ULTOSC(h, lo, c, 3, 5, 9), rtol=1e-8)


def test_macd(candles: Candles) -> None:
    c = candles.close
    for args in ((12, 26, 9), (5, 35, 5), (3, 10, 1)):
        for ours, ref in zip(ind.macd(c, *args), talib.MACD(c, *args), strict=True):
            assert_matches(ours, ref)


def test_bands_and_volatility(candles: Candles) -> None:
    c, h, lo = candles.close, candles.high, candles.low
    for p, k in ((20, 2.0), (10, 1.5), (50, 3.0)):
        ref = talib.BBANDS(c, p, k, k, 0)
        for ours, r in zip(ind.bbands(c, p, k), ref, strict=True):
            assert_matches(ours, r)
        width = ref[0] - ref[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            expected_b = np.where(width > 0, (c - ref[2]) / width, np.nan)
        assert_matches(ind.percent_b(c, p, k), expected_b, rtol=1e-7)
        assert_matches(ind.rolling_std(c, p), talib.STDDEV(c, p, 1.0), rtol=1e-7)
    for p in (1, 14, 30):
        assert_matches(ind.atr(h, lo, c, p), talib.ATR(h, lo, c, p))
    assert_matches(ind.true_range(h, lo, c), talib.TRANGE(h, lo, c))
    r = np.full(len(c), np.nan)
    r[1:] = c[1:] / c[:-1] - 1.0
    ref_vol = np.full(len(c), np.nan)
    ref_vol[1:] = talib.STDDEV(r[1:], 20, 1.0)
    assert_matches(ind.returns_volatility(c, 20), ref_vol, rtol=1e-6)


def test_trend_and_channels(candles: Candles) -> None:
    h, lo = candles.high, candles.low
    assert_matches(ind.sar(h, lo), talib.SAR(h, lo, 0.02, 0.2))
    assert_matches(ind.sar(h, lo, 0.05, 0.3), talib.SAR(h, lo, 0.05, 0.3))
    up, mid, low = ind.donchian(h, lo, 20)
    assert_matches(up, talib.MAX(h, 20))
    assert_matches(low, talib.MIN(lo, 20))
    assert_matches(mid, (talib.MAX(h, 20) + talib.MIN(lo, 20)) / 2)
    tenkan, kijun, span_a, span_b = ind.ichimoku(h, lo, 9, 26, 52)
    t_ref = talib.MIDPRICE(h, lo, 9)
    k_ref = talib.MIDPRICE(h, lo, 26)
    assert_matches(tenkan, t_ref)
    assert_matches(kijun, k_ref)
    shifted_a = np.full(len(h), np.nan)
    shifted_a[26:] = ((t_ref + k_ref) / 2)[:-26]
    shifted_b = np.full(len(h), np.nan)
    shifted_b[26:] = talib.MIDPRICE(h, lo, 52)[:-26]
    assert_matches(span_a, shifted_a)
    assert_matches(span_b, shifted_b)


def test_volume_indicators(candles: Candles) -> None:
    c, h, lo, v = candles.close, candles.high, candles.low, candles.volume
    assert_matches(ind.obv(c, v), talib.OBV(c, v))
    # CMF from TA-Lib's accumulation/distribution line: its change over the window / the window's volume.
    p = 20
    ad = talib.AD(h, lo, c, v)
    vsum = talib.SUM(v, p)
    ref = np.full(len(c), np.nan)
    ref[p:] = (ad[p:] - ad[:-p]) / vsum[p:]
    ours = ind.cmf(h, lo, c, v, p)
    assert np.isnan(ours[: p - 1]).all()
    # TA-Lib's running SUM leaves ~1e-15 where a window has no volume at all; there CMF is undefined (NaN).
    traded = vsum > 1e-9
    np.testing.assert_allclose(ours[p:][traded[p:]], ref[p:][traded[p:]], rtol=1e-6, atol=1e-9)
    window_volume = ind.window_sum(v, p)
    assert np.array_equal(np.isnan(ours[p - 1 :]), window_volume[p - 1 :] == 0.0)
    # VWAP (no TA-Lib equivalent) against a direct loop.
    tp = (h + lo + c) / 3
    cum = np.array([np.sum(tp[: i + 1] * v[: i + 1]) / np.sum(v[: i + 1]) for i in range(len(c))])
    np.testing.assert_allclose(ind.vwap(h, lo, c, v), cum, rtol=1e-9)
    roll = np.full(len(c), np.nan)
    for i in range(9, len(c)):
        w = slice(i - 9, i + 1)
        roll[i] = np.sum(tp[w] * v[w]) / np.sum(v[w]) if np.sum(v[w]) > 0 else np.nan
    np.testing.assert_allclose(ind.vwap(h, lo, c, v, 10), roll, rtol=1e-7, equal_nan=True)


# --- registry -------------------------------------------------------------------------------------------------


def test_registry_lists_every_required_indicator() -> None:
    required = {
        "sma",
        "ema",
        "wma",
        "rsi",
        "macd",
        "bbands",
        "percent_b",
        "atr",
        "stoch",
        "willr",
        "cci",
        "obv",
        "vwap",
        "mfi",
        "cmf",
        "aroon",
        "sar",
        "ichimoku",
        "ultosc",
        "cmo",
        "roc",
    }
    assert required <= set(INDICATORS)


@pytest.mark.parametrize("name", sorted(INDICATORS))
def test_registry_contract(name: str) -> None:
    spec = INDICATORS[name]
    c = load_bundled("BTC-USD_1d")
    out = compute_indicator(name, c, {})
    assert tuple(out) == spec.outputs
    model = spec.params_model.model_validate({})
    lookback = spec.lookback(model)
    warm = max(int(np.argmax(~np.isnan(a))) for a in out.values())
    assert warm == lookback, f"{name}: {warm} leading NaN bars, lookback says {lookback}"
    for a in out.values():
        assert a.dtype == np.float64 and len(a) == len(c)
        assert not np.isinf(a).any()
    json.dumps(spec.params_schema())
    # Causality: a prefix of the data gives exactly the prefix of the output.
    for cut in (lookback + 1, 500, 1200):
        part = compute_indicator(name, c.slice(0, cut), {})
        for key, arr in part.items():
            np.testing.assert_array_equal(arr, out[key][:cut])


def test_registry_rejects_bad_input() -> None:
    c = load_bundled("BTC-USD_1d").slice(0, 100)
    with pytest.raises(ValueError, match="unknown indicator"):
        compute_indicator("magic", c, {})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        compute_indicator("sma", c, {"period": 0})
    with pytest.raises(ValueError, match="Extra inputs"):
        compute_indicator("sma", c, {"period": 10, "colour": "red"})
    with pytest.raises(ValueError, match="fast must be smaller"):
        compute_indicator("macd", c, {"fast": 30, "slow": 10})
    with pytest.raises(ValueError, match="acceleration must not exceed"):
        compute_indicator("sar", c, {"acceleration": 0.5, "maximum": 0.2})
    bad = Candles(c.ts, c.open, c.high, c.low, np.where(np.arange(100) == 50, np.nan, c.close), c.volume)
    with pytest.raises(ValueError, match="NaN"):
        compute_indicator("sma", bad, {})


def test_sources_and_params_change_the_output() -> None:
    c = load_bundled("ETH-USD_1d")
    a = compute_indicator("sma", c, {"period": 5, "source": "hlc3"})["value"]
    np.testing.assert_allclose(a, talib.SMA((c.high + c.low + c.close) / 3, 5), equal_nan=True, rtol=1e-9)
    b = compute_indicator("vwap", c, {"period": 20})["value"]
    assert np.isnan(b[:19]).all() and not np.isnan(b[19:]).any()


def test_short_inputs_are_all_nan() -> None:
    x = np.array([1.0, 2.0, 3.0])
    assert np.isnan(ind.sma(x, 5)).all()
    assert np.isnan(ind.ema(x, 5)).all()
    assert np.isnan(ind.rsi(x, 5)).all()
    assert np.isnan(ind.macd(x)[0]).all()
    assert np.isnan(ind.atr(x, x, x, 5)).all()
    with pytest.raises(ValueError, match="period"):
        ind.sma(x, 0)


prices = arrays(
    np.float64, st.integers(60, 200), elements=st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False)
)


@settings(max_examples=60, deadline=None)
@given(x=prices, period=st.integers(2, 30))
def test_property_against_talib_on_arbitrary_series(x: np.ndarray, period: int) -> None:
    assert_matches(ind.sma(x, period), talib.SMA(x, period), rtol=1e-8)
    assert_matches(ind.ema(x, period), talib.EMA(x, period), rtol=1e-8)
    r = ind.rsi(x, period)
    assert_matches(r, talib.RSI(x, period), rtol=1e-7)
    valid = r[~np.isnan(r)]
    assert np.all((valid >= 0) & (valid <= 100))
    lo = x * 0.99
    hi = x * 1.01
    assert_matches(ind.atr(hi, lo, x, period), talib.ATR(hi, lo, x, period), rtol=1e-8)


@settings(max_examples=30, deadline=None)
@given(value=st.floats(0.5, 1e5), n=st.integers(30, 100), period=st.integers(1, 25))
def test_constant_series(value: float, n: int, period: int) -> None:
    x = np.full(n, value)
    assert np.allclose(ind.sma(x, period)[period - 1 :], value, rtol=1e-12)
    assert np.allclose(ind.ema(x, period)[period - 1 :], value, rtol=1e-12)
    assert np.allclose(ind.rolling_std(x, period)[period - 1 :], 0.0, atol=1e-9 * value)
    if period >= 2:
        assert np.all(ind.rsi(x, period)[period:] == 0.0)
