"""Turning what a source delivered into candles of the timeframe a user asked for. Pure numpy, no I/O.

Rules (the part users check):
- Buckets are aligned to the UTC epoch: a ``1d`` candle opens at 00:00 UTC, a ``4h`` candle at 00/04/08/... UTC.
- Only aggregation to an equal or coarser timeframe that is a whole multiple of the source's granularity is allowed;
  anything else raises ``ValueError``. A series is never labelled finer than the data it came from.
- Open = first, high = max, low = min, close = last, volume = sum (``NaN`` if any part is unknown).
- Gaps stay gaps: an empty bucket produces no candle and nothing is forward-filled.
"""

from __future__ import annotations

import numpy as np

from aaiti.trading.candles import TIMEFRAME_MS, Candles, FloatArray, IntArray


def timeframe_ms(timeframe: str) -> int:
    """``"1h"`` → 3 600 000. Raises ``ValueError`` for an unsupported timeframe."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unsupported timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_MS)}") from None


def format_ms(ms: int) -> str:
    """A granularity in words for error messages: 300000 → ``"5m"``, 345600000 → ``"4d"``."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def check_resample(source_ms: int, target_ms: int) -> None:
    """Raise ``ValueError`` unless ``source_ms`` data can honestly be aggregated to ``target_ms``."""
    if source_ms <= 0 or target_ms <= 0:
        raise ValueError("granularities must be positive")
    if source_ms > target_ms:
        raise ValueError(f"source granularity {format_ms(source_ms)} is coarser than {format_ms(target_ms)}")
    if target_ms % source_ms:
        raise ValueError(f"{format_ms(target_ms)} is not a whole multiple of {format_ms(source_ms)}")


def _groups(ts: IntArray, size_ms: int) -> tuple[IntArray, IntArray, IntArray]:
    bucket = (ts // size_ms) * size_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]).astype(np.int64)
    ends = np.r_[starts[1:], len(ts)].astype(np.int64) - 1
    return bucket[starts], starts, ends


def _empty() -> Candles:
    return Candles.from_arrays([], [], [], [], [], [])


def resample(candles: Candles, source_ms: int, timeframe: str, *, require_complete: bool = False) -> Candles:
    """Aggregate ``candles`` (granularity ``source_ms``, open times aligned to it) to ``timeframe``.

    With ``require_complete`` a bucket missing any source bar is dropped instead of being emitted partial.
    """
    target_ms = timeframe_ms(timeframe)
    check_resample(source_ms, target_ms)
    if len(candles) == 0:
        return _empty()
    ts = candles.ts
    if np.any(ts % source_ms != 0):
        raise ValueError(f"candle open times are not aligned to {format_ms(source_ms)}")
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("candle open times are not strictly increasing")
    if target_ms == source_ms:
        return candles
    opens, starts, ends = _groups(ts, target_ms)
    out = Candles(
        ts=opens,
        open=candles.open[starts],
        high=np.maximum.reduceat(candles.high, starts),
        low=np.minimum.reduceat(candles.low, starts),
        close=candles.close[ends],
        volume=np.add.reduceat(candles.volume, starts),
    )
    if require_complete:
        keep = (ends - starts + 1) == target_ms // source_ms
        out = _take(out, np.flatnonzero(keep))
    return out


def points_to_candles(ts: IntArray, price: FloatArray, granularity_ms: int) -> Candles:
    """Price samples (strictly increasing times) → candles of ``granularity_ms`` from the samples in each bucket.

    High/low are the extremes of the samples, not of the trades in between; volume is unknown (``NaN``).
    """
    if granularity_ms <= 0:
        raise ValueError("granularity must be positive")
    if len(ts) == 0:
        return _empty()
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("sample times are not strictly increasing")
    opens, starts, ends = _groups(ts, granularity_ms)
    return Candles(
        ts=opens,
        open=price[starts],
        high=np.maximum.reduceat(price, starts),
        low=np.minimum.reduceat(price, starts),
        close=price[ends],
        volume=np.full(len(starts), np.nan),
    )


def _take(candles: Candles, idx: IntArray) -> Candles:
    return Candles(
        candles.ts[idx],
        candles.open[idx],
        candles.high[idx],
        candles.low[idx],
        candles.close[idx],
        candles.volume[idx],
    )


def between(candles: Candles, start_ms: int, end_ms: int) -> Candles:
    """Candles with open time in ``[start_ms, end_ms)``."""
    lo = int(np.searchsorted(candles.ts, start_ms, side="left"))
    hi = int(np.searchsorted(candles.ts, end_ms, side="left"))
    return candles.slice(lo, max(lo, hi))


def completed(candles: Candles, timeframe_ms_: int, now_ms: int) -> Candles:
    """Drop candles that have not closed by ``now_ms`` (open + timeframe > now)."""
    hi = int(np.searchsorted(candles.ts, now_ms - timeframe_ms_, side="right"))
    return candles.slice(0, hi)
