"""Technical indicators: pure functions of float64 numpy arrays.

Contract shared by every function here:

- Inputs are 1-D ``float64`` arrays of equal length, oldest bar first, finite (no NaN/inf).
- The value at index ``i`` depends only on bars ``0..i`` (causal, no look-ahead). Computing an indicator on a
  prefix of the data gives bit-for-bit the same values as computing it on the whole array and slicing, because
  every computation runs forward from the first bar.
- Warm-up bars, where the indicator is not yet defined, are ``NaN`` -- never a guess. The number of leading NaNs
  matches TA-Lib for every indicator TA-Lib has (``tests/trading/test_indicators.py`` checks each one against
  TA-Lib on bundled real candles).
- Recursive indicators (EMA, Wilder RSI/ATR, CMO, SAR) are written as forward loops over Python floats rather than
  calls into TA-Lib: TA-Lib's compiled arithmetic differs from Python's in the last bit (fused multiply-add), and
  the streaming versions in :mod:`aaiti.trading.streaming` must reproduce these values exactly so that a paper bot
  and a backtest take the same decisions. Non-recursive indicators are vectorised numpy.

Moving averages use differences of a cumulative sum (two passes over the data, and exactly reproducible bar by
bar). Over very long series this loses about ``n * 1e-16`` of relative precision (1e-10 at a million bars), far
below price tick sizes. Where a window sum divides something (volume sums, dispersion), the window is summed
directly instead (:func:`window_sum`), so an all-zero window is exactly zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aaiti.trading.candles import Candles, FloatArray

_NAN = math.nan
# Relative size below which a dispersion (std, mean deviation) is rounding noise of a flat window.
_FLAT = 1e-12


def _nans(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


def _check_period(period: int, minimum: int = 1) -> None:
    if int(period) != period or period < minimum:
        raise ValueError(f"period must be an integer >= {minimum}, got {period!r}")


def rolling_sum(x: FloatArray, period: int) -> FloatArray:
    """Sum of the last ``period`` values; NaN for the first ``period - 1`` bars."""
    _check_period(period)
    n = len(x)
    out = np.empty(n, dtype=np.float64)
    if n < period:
        out.fill(np.nan)
        return out
    cs = np.cumsum(x)
    out[: period - 1] = np.nan
    out[period - 1] = cs[period - 1]
    np.subtract(cs[period:], cs[:-period], out=out[period:])
    return out


def rolling_max(x: FloatArray, period: int) -> FloatArray:
    """Highest value of the last ``period`` bars (including the current one)."""
    _check_period(period)
    out = _nans(len(x))
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).max(axis=1)
    return out


def rolling_min(x: FloatArray, period: int) -> FloatArray:
    """Lowest value of the last ``period`` bars (including the current one)."""
    _check_period(period)
    out = _nans(len(x))
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).min(axis=1)
    return out


def window_sum(x: FloatArray, period: int) -> FloatArray:
    """Sum of the last ``period`` values added oldest to newest, one vector pass per lag.

    Slower than :func:`rolling_sum` (O(n * period)) but exact to the window: a window of zeros sums to exactly
    0 and the error does not grow with the length of the series. Used where a window sum is a denominator.
    """
    _check_period(period)
    n = len(x)
    out = _nans(n)
    if n >= period:
        out[period - 1 :] = _window_sum_ordered(x, period)
    return out


def _window_sum_ordered(x: FloatArray, period: int) -> FloatArray:
    m = len(x) - period + 1
    acc = x[0:m].copy()
    for k in range(1, period):
        acc += x[k : k + m]
    return acc


def sma(x: FloatArray, period: int) -> FloatArray:
    """Simple moving average (TA-Lib ``SMA``)."""
    out = rolling_sum(x, period)
    out /= period
    return out


def ema(x: FloatArray, period: int) -> FloatArray:
    """Exponential moving average, ``k = 2 / (period + 1)``, seeded with the SMA of the first ``period`` bars
    (TA-Lib ``EMA``, classic seeding). First value at index ``period - 1``."""
    _check_period(period)
    return _ema_from(x.tolist(), period, 0)


def _ema_from(xs: list[float], period: int, start: int) -> FloatArray:
    """EMA of ``xs[start:]`` written into a full-length array; the seed is the mean of ``period`` values."""
    n = len(xs)
    out = [_NAN] * n
    if n - start < period:
        return np.array(out, dtype=np.float64)
    total = 0.0
    for i in range(start, start + period):
        total += xs[i]
    prev = total / period
    out[start + period - 1] = prev
    k = 2.0 / (period + 1)
    for i in range(start + period, n):
        prev = ((xs[i] - prev) * k) + prev
        out[i] = prev
    return np.array(out, dtype=np.float64)


def wma(x: FloatArray, period: int) -> FloatArray:
    """Linearly weighted moving average, weights ``1..period`` with the newest bar heaviest (TA-Lib ``WMA``)."""
    _check_period(period)
    n = len(x)
    out = _nans(n)
    if n < period:
        return out
    m = n - period + 1
    acc = x[0:m] * 1.0
    for k in range(1, period):
        acc += x[k : k + m] * float(k + 1)
    out[period - 1 :] = acc / (period * (period + 1) / 2.0)
    return out


def _wilder_gain_loss(xs: list[float], period: int, signed: bool) -> FloatArray:
    """Shared loop of RSI (``signed=False``) and CMO (``signed=True``) with TA-Lib's Wilder smoothing."""
    n = len(xs)
    out = [_NAN] * n
    if n <= period:
        return np.array(out, dtype=np.float64)
    prev = xs[0]
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = xs[i] - prev
        prev = xs[i]
        if d < 0:
            loss -= d
        else:
            gain += d
    loss /= period
    gain /= period
    out[period] = _gain_loss_value(gain, loss, signed)
    pm1 = period - 1
    for i in range(period + 1, n):
        d = xs[i] - prev
        prev = xs[i]
        loss *= pm1
        gain *= pm1
        if d < 0:
            loss -= d
        else:
            gain += d
        loss /= period
        gain /= period
        out[i] = _gain_loss_value(gain, loss, signed)
    return np.array(out, dtype=np.float64)


def _gain_loss_value(gain: float, loss: float, signed: bool) -> float:
    total = gain + loss
    # No movement at all reads 0 (as in TA-Lib), not NaN.
    if total == 0.0:
        return 0.0
    if signed:
        return 100.0 * ((gain - loss) / total)
    return 100.0 * (gain / total)


def rsi(x: FloatArray, period: int = 14) -> FloatArray:
    """Relative strength index with Wilder smoothing (TA-Lib ``RSI``). First value at index ``period``."""
    _check_period(period, 2)
    return _wilder_gain_loss(x.tolist(), period, signed=False)


def cmo(x: FloatArray, period: int = 14) -> FloatArray:
    """Chande momentum oscillator, ``100 * (up - down) / (up + down)`` with Wilder smoothing (TA-Lib ``CMO``)."""
    _check_period(period, 2)
    return _wilder_gain_loss(x.tolist(), period, signed=True)


def macd(x: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram (TA-Lib ``MACD``).

    As in TA-Lib, both EMAs start at bar ``slow - 1``: the fast EMA is seeded with the mean of the ``fast`` bars
    ending there, so the line does not depend on bars the slow EMA has not seen. All three outputs start at bar
    ``slow + signal - 2``.
    """
    _check_period(fast, 2)
    _check_period(slow, 2)
    _check_period(signal, 1)
    if fast >= slow:
        raise ValueError("macd needs fast < slow")
    n = len(x)
    line_out = _nans(n)
    sig_out = _nans(n)
    hist_out = _nans(n)
    first = slow + signal - 2
    if n <= first:
        return line_out, sig_out, hist_out
    xs = x.tolist()
    slow_e = _ema_from(xs, slow, 0)
    fast_e = _ema_from(xs, fast, slow - fast)
    line = fast_e - slow_e
    sig = _ema_from(line.tolist(), signal, slow - 1)
    line_out[first:] = line[first:]
    sig_out[first:] = sig[first:]
    hist_out[first:] = line[first:] - sig[first:]
    return line_out, sig_out, hist_out


def rolling_std(x: FloatArray, period: int) -> FloatArray:
    """Population standard deviation of the last ``period`` values (as TA-Lib ``STDDEV`` with ``nbdev=1``).

    Computed as the root of the mean squared deviation from the window mean (no ``E[x^2] - E[x]^2``
    cancellation); the window sum and the squared deviations are added oldest to newest.
    """
    _check_period(period)
    n = len(x)
    out = _nans(n)
    if n < period:
        return out
    mean = _window_sum_ordered(x, period) / period
    m = n - period + 1
    d = x[0:m] - mean
    acc = d * d
    for k in range(1, period):
        d = x[k : k + m] - mean
        acc += d * d
    std = np.sqrt(acc / period)
    # Rounding noise of a flat window (see cci): report exactly 0.
    std[std <= _FLAT * np.abs(mean)] = 0.0
    out[period - 1 :] = std
    return out


def bbands(x: FloatArray, period: int = 20, k: float = 2.0) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands ``(upper, middle, lower)``: SMA +/- ``k`` population standard deviations (TA-Lib
    ``BBANDS`` with ``nbdevup = nbdevdn = k`` and a simple moving average)."""
    middle = sma(x, period)
    width = rolling_std(x, period) * k
    return middle + width, middle, middle - width


def percent_b(x: FloatArray, period: int = 20, k: float = 2.0) -> FloatArray:
    """Bollinger %B: ``(x - lower) / (upper - lower)``; NaN where the bands have zero width."""
    upper, _, lower = bbands(x, period, k)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (x - lower) / width
    out[~(width > 0)] = np.nan
    return out


def true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range (TA-Lib ``TRANGE``); bar 0 has no previous close and is NaN."""
    n = len(close)
    out = _nans(n)
    if n < 2:
        return out
    prev = close[:-1]
    h = high[1:]
    lo = low[1:]
    out[1:] = np.maximum(np.maximum(h - lo, np.abs(h - prev)), np.abs(lo - prev))
    return out


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Average true range with Wilder smoothing (TA-Lib ``ATR``): the first value, at bar ``period``, is the mean
    of the true ranges of bars ``1..period``; then ``atr = (atr * (period - 1) + tr) / period``."""
    _check_period(period)
    tr = true_range(high, low, close).tolist()
    n = len(tr)
    out = [_NAN] * n
    if n <= period:
        return np.array(out, dtype=np.float64)
    total = 0.0
    for i in range(1, period + 1):
        total += tr[i]
    prev = total / period
    out[period] = prev
    pm1 = period - 1
    for i in range(period + 1, n):
        prev = ((prev * pm1) + tr[i]) / period
        out[i] = prev
    return np.array(out, dtype=np.float64)


def stoch(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    fastk_period: int = 14,
    slowk_period: int = 3,
    slowd_period: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic ``(%K, %D)`` with simple moving averages (TA-Lib ``STOCH``, ``matype = 0``).

    Raw %K is ``100 * (close - lowest low) / (highest high - lowest low)`` over ``fastk_period`` bars (0 for a flat
    window), slow %K its SMA over ``slowk_period``, %D the SMA of slow %K over ``slowd_period``. Both outputs start
    at bar ``fastk_period + slowk_period + slowd_period - 3``, as in TA-Lib.
    """
    for p in (fastk_period, slowk_period, slowd_period):
        _check_period(p)
    n = len(close)
    hh = rolling_max(high, fastk_period)
    ll = rolling_min(low, fastk_period)
    rng = hh - ll
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(rng > 0, (close - ll) / rng * 100.0, 0.0)
    raw[: fastk_period - 1] = np.nan
    slow_k = _nans(n)
    slow_d = _nans(n)
    s0 = fastk_period - 1
    if n - s0 >= slowk_period:
        slow_k[s0:] = sma(raw[s0:], slowk_period)
    s1 = s0 + slowk_period - 1
    if n - s1 >= slowd_period:
        slow_d[s1:] = sma(slow_k[s1:], slowd_period)
    first = s1 + slowd_period - 1
    slow_k[: min(first, n)] = np.nan
    return slow_k, slow_d


def willr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Williams %R, ``-100 * (highest high - close) / (highest high - lowest low)``, in [-100, 0] (TA-Lib
    ``WILLR``); 0 for a flat window."""
    hh = rolling_max(high, period)
    ll = rolling_min(low, period)
    rng = hh - ll
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(rng > 0, (hh - close) / rng * -100.0, 0.0)
    out[: period - 1] = np.nan
    return out


def cci(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Commodity channel index: ``(tp - sma(tp)) / (0.015 * mean |tp - sma(tp)|)`` over ``period`` bars with the
    typical price ``tp = (high + low + close) / 3`` (TA-Lib ``CCI``); 0 when the mean deviation is 0."""
    _check_period(period, 2)
    n = len(close)
    out = _nans(n)
    if n < period:
        return out
    tp = (high + low + close) / 3.0
    mean = _window_sum_ordered(tp, period) / period
    m = n - period + 1
    acc = np.abs(tp[0:m] - mean)
    for k in range(1, period):
        acc += np.abs(tp[k : k + m] - mean)
    md = acc / period
    dev = tp[period - 1 :] - mean
    # A flat window has no deviation; rounding in the running-total mean can leave ~1e-16 relative noise,
    # which the ratio would blow up to +/-66.7 (period 2). Treat it as flat, as TA-Lib does (0).
    flat = md <= _FLAT * np.abs(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period - 1 :] = np.where(flat, 0.0, dev / (0.015 * md))
    return out


def obv(close: FloatArray, volume: FloatArray) -> FloatArray:
    """On-balance volume (TA-Lib ``OBV``): starts at the first bar's volume, then adds the volume of up bars and
    subtracts that of down bars. Defined from bar 0."""
    n = len(close)
    if n == 0:
        return _nans(0)
    signed = np.zeros(n, dtype=np.float64)
    signed[0] = volume[0]
    diff = close[1:] - close[:-1]
    signed[1:] = np.where(diff > 0, volume[1:], np.where(diff < 0, -volume[1:], 0.0))
    return np.cumsum(signed)


def vwap(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, period: int | None = None
) -> FloatArray:
    """Volume-weighted average of the typical price ``(high + low + close) / 3``.

    ``period=None``: cumulative from the first bar (anchored VWAP). Otherwise over the last ``period`` bars.
    NaN where the volume in the window is zero. (TA-Lib has no VWAP; the tests check it against a direct loop.)
    """
    tp = (high + low + close) / 3.0
    pv = tp * volume
    if period is None:
        num = np.cumsum(pv)
        den = np.cumsum(volume)
    else:
        num = window_sum(pv, period)
        den = window_sum(volume, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return out


def mfi(high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, period: int = 14) -> FloatArray:
    """Money flow index (TA-Lib ``MFI``): money flow ``tp * volume`` counted as positive when the typical price
    rose from the previous bar and negative when it fell, ``100 * pos / (pos + neg)`` over ``period`` bars; 0 when
    there was no flow. First value at bar ``period``."""
    _check_period(period)
    n = len(close)
    out = _nans(n)
    if n <= period:
        return out
    # Summed as high + (low + close): TA-Lib's order, so that one-ulp differences between consecutive typical
    # prices (which decide whether a bar's flow counts as positive, negative or neither) round as in TA-Lib.
    tp = (high + (low + close)) / 3.0
    flow = tp * volume
    d = tp[1:] - tp[:-1]
    pos = np.where(d > 0, flow[1:], 0.0)
    neg = np.where(d < 0, flow[1:], 0.0)
    ps = _window_sum_ordered(pos, period)
    ns = _window_sum_ordered(neg, period)
    tot = ps + ns
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period:] = np.where(tot >= 1.0, ps / tot * 100.0, 0.0)
    return out


def cmf(high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, period: int = 20) -> FloatArray:
    """Chaikin money flow: ``sum(mfm * volume) / sum(volume)`` over ``period`` bars with the money-flow multiplier
    ``mfm = ((close - low) - (high - close)) / (high - low)`` (0 when ``high == low``), the same multiplier as
    TA-Lib's ``AD`` line. NaN where the window has no volume."""
    rng = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        mfm = np.where(rng > 0, ((close - low) - (high - close)) / rng, 0.0)
    num = window_sum(mfm * volume, period)
    den = window_sum(volume, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return out


def aroon(high: FloatArray, low: FloatArray, period: int = 14) -> tuple[FloatArray, FloatArray]:
    """Aroon ``(down, up)`` over ``period + 1`` bars (TA-Lib ``AROON``): ``100 * (period - bars since the lowest
    low / highest high) / period``; ties count the most recent extreme. First value at bar ``period``."""
    _check_period(period)
    n = len(high)
    down = _nans(n)
    up = _nans(n)
    if n <= period:
        return down, up
    w = period + 1
    hw = sliding_window_view(high, w)
    lw = sliding_window_view(low, w)
    # argmax returns the first (oldest) maximum; reverse the window to get the most recent one.
    since_high = np.argmax(hw[:, ::-1], axis=1)
    since_low = np.argmin(lw[:, ::-1], axis=1)
    up[period:] = 100.0 * (period - since_high) / period
    down[period:] = 100.0 * (period - since_low) / period
    return down, up


def sar(high: FloatArray, low: FloatArray, acceleration: float = 0.02, maximum: float = 0.2) -> FloatArray:
    """Parabolic SAR (TA-Lib ``SAR``). The initial direction is long unless bar 1 has a positive minus
    directional move (TA-Lib's rule); the first value is at bar 1."""
    n = len(high)
    out = [_NAN] * n
    if n < 2:
        return np.array(out, dtype=np.float64)
    hs = high.tolist()
    ls = low.tolist()
    up_move = hs[1] - hs[0]
    down_move = ls[0] - ls[1]
    is_long = not (down_move > 0 and up_move < down_move)
    af = acceleration
    if is_long:
        ep = hs[1]
        s = ls[0]
    else:
        ep = ls[1]
        s = hs[0]
    # TA-Lib starts the loop with bar 1 as both the "previous" and the "new" bar.
    new_low = ls[1]
    new_high = hs[1]
    for i in range(1, n):
        prev_low = new_low
        prev_high = new_high
        new_low = ls[i]
        new_high = hs[i]
        if is_long:
            if new_low <= s:
                is_long = False
                s = ep
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
                out[i] = s
                af = acceleration
                ep = new_low
                s = s + af * (ep - s)
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
            else:
                out[i] = s
                if new_high > ep:
                    ep = new_high
                    af += acceleration
                    if af > maximum:
                        af = maximum
                s = s + af * (ep - s)
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
        else:
            if new_high >= s:
                is_long = True
                s = ep
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
                out[i] = s
                af = acceleration
                ep = new_high
                s = s + af * (ep - s)
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
            else:
                out[i] = s
                if new_low < ep:
                    ep = new_low
                    af += acceleration
                    if af > maximum:
                        af = maximum
                s = s + af * (ep - s)
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
    return np.array(out, dtype=np.float64)


def midprice(high: FloatArray, low: FloatArray, period: int) -> FloatArray:
    """``(highest high + lowest low) / 2`` over ``period`` bars (TA-Lib ``MIDPRICE``)."""
    return (rolling_max(high, period) + rolling_min(low, period)) / 2.0


def _shift_forward(x: FloatArray, bars: int) -> FloatArray:
    out = _nans(len(x))
    if bars < len(x):
        out[bars:] = x[: len(x) - bars]
    return out


def ichimoku(
    high: FloatArray, low: FloatArray, tenkan: int = 9, kijun: int = 26, senkou_b: int = 52
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Ichimoku ``(tenkan, kijun, senkou_a, senkou_b)`` aligned to the bar where each value is *plotted*.

    Tenkan/kijun are midprices over ``tenkan``/``kijun`` bars. The two senkou spans are computed ``kijun`` bars
    earlier and displaced forward, so the value at bar ``i`` uses only bars up to ``i - kijun`` (causal). The
    chikou span (today's close plotted ``kijun`` bars in the past) would leak the future into past bars and is
    deliberately not provided.
    """
    t = midprice(high, low, tenkan)
    k = midprice(high, low, kijun)
    a = _shift_forward((t + k) / 2.0, kijun)
    b = _shift_forward(midprice(high, low, senkou_b), kijun)
    return t, k, a, b


def ultosc(
    high: FloatArray, low: FloatArray, close: FloatArray, period1: int = 7, period2: int = 14, period3: int = 28
) -> FloatArray:
    """Ultimate oscillator (TA-Lib ``ULTOSC``): buying pressure ``close - min(low, prev close)`` over true range,
    averaged over three windows with weights 4:2:1, scaled to 0..100. First value at bar ``max(periods)``."""
    for p in (period1, period2, period3):
        _check_period(p)
    n = len(close)
    out = _nans(n)
    longest = max(period1, period2, period3)
    if n <= longest:
        return out
    prev = close[:-1]
    true_low = np.minimum(low[1:], prev)
    bp = close[1:] - true_low
    tr = np.maximum(high[1:], prev) - true_low
    total = np.zeros(n - 1, dtype=np.float64)
    for p, w in ((period1, 4.0), (period2, 2.0), (period3, 1.0)):
        b = window_sum(bp, p)
        t = window_sum(tr, p)
        with np.errstate(divide="ignore", invalid="ignore"):
            total += np.where(t != 0, b / t, 0.0) * w
    out[longest:] = total[longest - 1 :] * (100.0 / 7.0)
    return out


def roc(x: FloatArray, period: int = 10) -> FloatArray:
    """Rate of change in percent, ``100 * (x / x[period bars ago] - 1)`` (TA-Lib ``ROC``); 0 where the old value
    is 0."""
    _check_period(period)
    n = len(x)
    out = _nans(n)
    if n <= period:
        return out
    old = x[:-period]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[period:] = np.where(old != 0, (x[period:] / old - 1.0) * 100.0, 0.0)
    return out


def donchian(high: FloatArray, low: FloatArray, period: int = 20) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Donchian channel ``(upper, middle, lower)``: highest high and lowest low of the last ``period`` bars
    (including the current bar) and their mean."""
    upper = rolling_max(high, period)
    lower = rolling_min(low, period)
    return upper, (upper + lower) / 2.0, lower


def returns_volatility(close: FloatArray, period: int) -> FloatArray:
    """Population standard deviation of the last ``period`` simple close-to-close returns (per bar, not
    annualised). First value at bar ``period``."""
    _check_period(period, 2)
    n = len(close)
    out = _nans(n)
    if n <= period:
        return out
    r = close[1:] / close[:-1] - 1.0
    out[1:] = rolling_std(r, period)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Registry: the contract used by the rule strategy, the ML feature code and the indicators API.
# ---------------------------------------------------------------------------------------------------------------

Source = Literal["open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4"]
Period = Annotated[int, Field(ge=1, le=2000)]
Period2 = Annotated[int, Field(ge=2, le=2000)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcePeriodParams(_Params):
    source: Source = "close"
    period: Period = 14


class SourcePeriod2Params(_Params):
    source: Source = "close"
    period: Period2 = 14


class PeriodParams(_Params):
    period: Period = 14


class Period2Params(_Params):
    period: Period2 = 14


class MacdParams(_Params):
    source: Source = "close"
    fast: Period2 = 12
    slow: Period2 = 26
    signal: Period = 9

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


class BbandsParams(_Params):
    source: Source = "close"
    period: Period = 20
    k: float = Field(default=2.0, gt=0.0, le=10.0)


class StochParams(_Params):
    fastk_period: Period = 14
    slowk_period: Period = 3
    slowd_period: Period = 3


class VwapParams(_Params):
    period: Period | None = None


class SarParams(_Params):
    acceleration: float = Field(default=0.02, gt=0.0, le=1.0)
    maximum: float = Field(default=0.2, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _accel_below_max(self) -> SarParams:
        if self.acceleration > self.maximum:
            raise ValueError("acceleration must not exceed maximum")
        return self


class IchimokuParams(_Params):
    tenkan: Period = 9
    kijun: Period = 26
    senkou_b: Period = 52


class UltoscParams(_Params):
    period1: Period = 7
    period2: Period = 14
    period3: Period = 28


class NoParams(_Params):
    pass


def source_series(candles: Candles, source: str) -> FloatArray:
    """One price series of the candles: a column, or ``hl2``/``hlc3``/``ohlc4`` averages."""
    if source == "hl2":
        return (candles.high + candles.low) / 2.0
    if source == "hlc3":
        return (candles.high + candles.low + candles.close) / 3.0
    if source == "ohlc4":
        return (candles.open + candles.high + candles.low + candles.close) / 4.0
    if source in ("open", "high", "low", "close", "volume"):
        arr: FloatArray = getattr(candles, source)
        return arr
    raise ValueError(f"unknown source {source!r}")


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One registered indicator.

    ``compute(candles, params)`` returns one array per name in ``outputs``, each as long as the candles.
    ``lookback(params)`` is the number of leading warm-up bars (NaN) of the slowest output.
    """

    name: str
    title: str
    description: str
    params_model: type[BaseModel]
    outputs: tuple[str, ...]
    compute: Callable[[Candles, Any], dict[str, FloatArray]]
    lookback: Callable[[Any], int]

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()


def _spec(
    name: str,
    title: str,
    description: str,
    params_model: type[BaseModel],
    outputs: tuple[str, ...],
    compute: Callable[[Candles, Any], dict[str, FloatArray]],
    lookback: Callable[[Any], int],
) -> IndicatorSpec:
    return IndicatorSpec(name, title, description, params_model, outputs, compute, lookback)


def _macd(c: Candles, p: MacdParams) -> dict[str, FloatArray]:
    line, sig, hist = macd(source_series(c, p.source), p.fast, p.slow, p.signal)
    return {"macd": line, "signal": sig, "hist": hist}


def _bbands(c: Candles, p: BbandsParams) -> dict[str, FloatArray]:
    upper, middle, lower = bbands(source_series(c, p.source), p.period, p.k)
    return {"upper": upper, "middle": middle, "lower": lower}


def _stoch(c: Candles, p: StochParams) -> dict[str, FloatArray]:
    k, d = stoch(c.high, c.low, c.close, p.fastk_period, p.slowk_period, p.slowd_period)
    return {"k": k, "d": d}


def _aroon(c: Candles, p: PeriodParams) -> dict[str, FloatArray]:
    down, up = aroon(c.high, c.low, p.period)
    return {"down": down, "up": up, "oscillator": up - down}


def _ichimoku(c: Candles, p: IchimokuParams) -> dict[str, FloatArray]:
    t, k, a, b = ichimoku(c.high, c.low, p.tenkan, p.kijun, p.senkou_b)
    return {"tenkan": t, "kijun": k, "senkou_a": a, "senkou_b": b}


def _donchian(c: Candles, p: PeriodParams) -> dict[str, FloatArray]:
    upper, middle, lower = donchian(c.high, c.low, p.period)
    return {"upper": upper, "middle": middle, "lower": lower}


INDICATORS: dict[str, IndicatorSpec] = {
    s.name: s
    for s in (
        _spec(
            "sma",
            "Simple moving average",
            "Mean of the last `period` values.",
            SourcePeriodParams,
            ("value",),
            lambda c, p: {"value": sma(source_series(c, p.source), p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "ema",
            "Exponential moving average",
            "k = 2/(period+1), seeded with the SMA of the first `period` values.",
            SourcePeriodParams,
            ("value",),
            lambda c, p: {"value": ema(source_series(c, p.source), p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "wma",
            "Weighted moving average",
            "Linear weights 1..period, newest heaviest.",
            SourcePeriodParams,
            ("value",),
            lambda c, p: {"value": wma(source_series(c, p.source), p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "rsi",
            "Relative strength index",
            "Wilder-smoothed share of up moves, 0..100.",
            SourcePeriod2Params,
            ("value",),
            lambda c, p: {"value": rsi(source_series(c, p.source), p.period)},
            lambda p: p.period,
        ),
        _spec(
            "macd",
            "MACD",
            "EMA(fast) - EMA(slow), its EMA(signal) and the difference (histogram).",
            MacdParams,
            ("macd", "signal", "hist"),
            _macd,
            lambda p: p.slow + p.signal - 2,
        ),
        _spec(
            "bbands",
            "Bollinger bands",
            "SMA +/- k population standard deviations.",
            BbandsParams,
            ("upper", "middle", "lower"),
            _bbands,
            lambda p: p.period - 1,
        ),
        _spec(
            "percent_b",
            "Bollinger %B",
            "(price - lower) / (upper - lower); NaN where the bands have zero width.",
            BbandsParams,
            ("value",),
            lambda c, p: {"value": percent_b(source_series(c, p.source), p.period, p.k)},
            lambda p: p.period - 1,
        ),
        _spec(
            "atr",
            "Average true range",
            "Wilder-smoothed true range, in price units.",
            PeriodParams,
            ("value",),
            lambda c, p: {"value": atr(c.high, c.low, c.close, p.period)},
            lambda p: p.period,
        ),
        _spec(
            "stoch",
            "Stochastic oscillator",
            "Slow %K and %D (simple moving averages), 0..100.",
            StochParams,
            ("k", "d"),
            _stoch,
            lambda p: p.fastk_period + p.slowk_period + p.slowd_period - 3,
        ),
        _spec(
            "willr",
            "Williams %R",
            "-100 * (highest high - close) / (highest high - lowest low), -100..0.",
            PeriodParams,
            ("value",),
            lambda c, p: {"value": willr(c.high, c.low, c.close, p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "cci",
            "Commodity channel index",
            "(typical price - its SMA) / (0.015 * mean absolute deviation).",
            Period2Params,
            ("value",),
            lambda c, p: {"value": cci(c.high, c.low, c.close, p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "obv",
            "On-balance volume",
            "Running sum of volume, added on up closes and subtracted on down closes.",
            NoParams,
            ("value",),
            lambda c, p: {"value": obv(c.close, c.volume)},
            lambda p: 0,
        ),
        _spec(
            "vwap",
            "Volume-weighted average price",
            "Typical price weighted by volume; cumulative from the first bar, or over `period` bars.",
            VwapParams,
            ("value",),
            lambda c, p: {"value": vwap(c.high, c.low, c.close, c.volume, p.period)},
            lambda p: 0 if p.period is None else p.period - 1,
        ),
        _spec(
            "mfi",
            "Money flow index",
            "Volume-weighted RSI of the typical price, 0..100.",
            PeriodParams,
            ("value",),
            lambda c, p: {"value": mfi(c.high, c.low, c.close, c.volume, p.period)},
            lambda p: p.period,
        ),
        _spec(
            "cmf",
            "Chaikin money flow",
            "Sum of money-flow volume over the sum of volume, -1..1.",
            PeriodParams,
            ("value",),
            lambda c, p: {"value": cmf(c.high, c.low, c.close, c.volume, p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "aroon",
            "Aroon",
            "Time since the highest high / lowest low as 0..100, and up - down.",
            PeriodParams,
            ("down", "up", "oscillator"),
            _aroon,
            lambda p: p.period,
        ),
        _spec(
            "sar",
            "Parabolic SAR",
            "Wilder's stop-and-reverse level, in price units.",
            SarParams,
            ("value",),
            lambda c, p: {"value": sar(c.high, c.low, p.acceleration, p.maximum)},
            lambda p: 1,
        ),
        _spec(
            "ichimoku",
            "Ichimoku cloud",
            "Tenkan, kijun and the two senkou spans displaced forward by kijun bars (no chikou: it looks ahead).",
            IchimokuParams,
            ("tenkan", "kijun", "senkou_a", "senkou_b"),
            _ichimoku,
            lambda p: max(p.tenkan, p.kijun, p.senkou_b) - 1 + p.kijun,
        ),
        _spec(
            "ultosc",
            "Ultimate oscillator",
            "Buying pressure over true range on three windows, weighted 4:2:1, 0..100.",
            UltoscParams,
            ("value",),
            lambda c, p: {"value": ultosc(c.high, c.low, c.close, p.period1, p.period2, p.period3)},
            lambda p: max(p.period1, p.period2, p.period3),
        ),
        _spec(
            "cmo",
            "Chande momentum oscillator",
            "100 * (up - down) / (up + down), Wilder-smoothed, -100..100.",
            SourcePeriod2Params,
            ("value",),
            lambda c, p: {"value": cmo(source_series(c, p.source), p.period)},
            lambda p: p.period,
        ),
        _spec(
            "roc",
            "Rate of change",
            "Percent change over `period` bars.",
            SourcePeriodParams,
            ("value",),
            lambda c, p: {"value": roc(source_series(c, p.source), p.period)},
            lambda p: p.period,
        ),
        _spec(
            "donchian",
            "Donchian channel",
            "Highest high, lowest low (current bar included) and their mean.",
            PeriodParams,
            ("upper", "middle", "lower"),
            _donchian,
            lambda p: p.period - 1,
        ),
        _spec(
            "stddev",
            "Standard deviation",
            "Population standard deviation over `period` values.",
            SourcePeriodParams,
            ("value",),
            lambda c, p: {"value": rolling_std(source_series(c, p.source), p.period)},
            lambda p: p.period - 1,
        ),
        _spec(
            "true_range",
            "True range",
            "max(high, previous close) - min(low, previous close).",
            NoParams,
            ("value",),
            lambda c, p: {"value": true_range(c.high, c.low, c.close)},
            lambda p: 1,
        ),
    )
}


def validate_indicator_params(name: str, params: Mapping[str, Any] | None) -> BaseModel:
    """Validate ``params`` for indicator ``name``; raises ``ValueError`` (pydantic's ``ValidationError`` is one)
    for an unknown name or bad parameters."""
    spec = INDICATORS.get(name)
    if spec is None:
        raise ValueError(f"unknown indicator {name!r}; known: {', '.join(sorted(INDICATORS))}")
    return spec.params_model.model_validate(dict(params or {}))


def compute_indicator(name: str, candles: Candles, params: Mapping[str, Any] | None = None) -> dict[str, FloatArray]:
    """Compute a registered indicator on ``candles``.

    Returns ``{output_name: array}`` (arrays as long as the candles, warm-up bars NaN). Raises ``ValueError`` for
    an unknown name, bad parameters or non-finite candle values.
    """
    model = validate_indicator_params(name, params)
    for col in ("open", "high", "low", "close", "volume"):
        if not np.all(np.isfinite(getattr(candles, col))):
            raise ValueError(f"candles column {col} contains NaN or infinity")
    return INDICATORS[name].compute(candles, model)
