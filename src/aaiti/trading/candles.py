"""Columnar OHLCV candles.

Contract:
- ``ts`` is the candle's **open** time in epoch milliseconds, UTC, strictly increasing (int64).
- ``open/high/low/close`` are quote-currency prices, ``volume`` is in base-asset units (float64).
- Arrays are equal length; gaps are left as gaps (no forward fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TIMEFRAME_MS: dict[str, int] = {
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "30m": 30 * 60_000,
    "1h": 3_600_000,
    "4h": 4 * 3_600_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True, slots=True)
class Candles:
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_arrays(
        cls,
        ts: npt.ArrayLike,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> Candles:
        return cls(
            ts=np.asarray(ts, dtype=np.int64),
            open=np.asarray(open_, dtype=np.float64),
            high=np.asarray(high, dtype=np.float64),
            low=np.asarray(low, dtype=np.float64),
            close=np.asarray(close, dtype=np.float64),
            volume=np.asarray(volume, dtype=np.float64),
        )

    def slice(self, start: int, stop: int) -> Candles:
        return Candles(
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )


def align(candles: dict[str, Candles]) -> dict[str, Candles]:
    """Restrict several symbols' candles to the timestamps they all have (for multi-symbol backtests).

    Bars missing from any one symbol are dropped for all of them; nothing is filled in.
    """
    if not candles:
        return {}
    common: IntArray | None = None
    for c in candles.values():
        common = c.ts if common is None else np.intersect1d(common, c.ts, assume_unique=True)
    assert common is not None
    out: dict[str, Candles] = {}
    for sym, c in candles.items():
        keep = np.isin(c.ts, common, assume_unique=True)
        out[sym] = Candles(c.ts[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep])
    return out
