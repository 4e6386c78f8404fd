"""Parse user-supplied candle CSV: ``timestamp_ms,open,high,low,close,volume``. Pure: no I/O, no clock.

Each row is checked on its own and either accepted or reported with its line number and reason, so one bad line
does not sink a file and nothing bad is stored silently. Rules:

- six comma-separated fields; an optional header line naming them;
- ``timestamp_ms`` an integer number of **milliseconds** since the epoch, UTC, candle **open** time (values that
  look like seconds are refused, not guessed), strictly after the previous accepted row;
- prices finite and > 0, volume finite and >= 0; ``low <= min(open, close)`` and ``high >= max(open, close)``;
- optionally aligned to a timeframe and not later than ``max_ts_ms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aaiti.trading.candles import TIMEFRAME_MS, Candles

COLUMNS = ("timestamp_ms", "open", "high", "low", "close", "volume")
MIN_TS_MS = 1_230_768_000_000  # 2009-01-01: nothing tradable predates it; smaller values are seconds or garbage
MAX_REPORTED_REJECTIONS = 1000


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class CsvImportResult:
    """Accepted candles plus the rejected rows (the first :data:`MAX_REPORTED_REJECTIONS`; the total count is
    ``rejected_count``)."""

    candles: Candles
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_count: int = 0

    @property
    def accepted_count(self) -> int:
        return len(self.candles)


class _RowError(ValueError):
    pass


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _RowError(f"{name} is not finite")
    return value


def _timestamp(text: str) -> int:
    if not text.isdigit():
        raise _RowError(f"timestamp_ms {text!r} is not a whole number of milliseconds")
    ts = int(text)
    if ts < MIN_TS_MS:
        hint = " (looks like seconds; expected milliseconds)" if ts >= MIN_TS_MS // 1000 else ""
        raise _RowError(f"timestamp_ms {ts} is before 2009{hint}")
    return ts


def _is_header(fields: list[str]) -> bool:
    return [f.strip().lower() for f in fields] == list(COLUMNS) or fields[0].strip().lower() in (
        "timestamp",
        "timestamp_ms",
        "time",
        "ts",
    )


def parse_candles_csv(
    text: str,
    *,
    timeframe: str | None = None,
    max_ts_ms: int | None = None,
    max_rows: int = 2_000_000,
) -> CsvImportResult:
    """Parse CSV ``text``. Raises ``ValueError`` only for a file that is unusable as a whole (too many rows, an
    unknown timeframe); row problems are returned in ``rejected``."""
    step = None
    if timeframe is not None:
        if timeframe not in TIMEFRAME_MS:
            raise ValueError(f"unsupported timeframe {timeframe!r}")
        step = TIMEFRAME_MS[timeframe]
    rows: list[tuple[int, float, float, float, float, float]] = []
    rejected: list[RejectedRow] = []
    rejected_count = 0
    last_ts: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = line.split(",")
        if not rows and rejected_count == 0 and last_ts is None and _is_header(fields):
            continue
        try:
            if len(fields) != len(COLUMNS):
                raise _RowError(f"expected {len(COLUMNS)} fields, got {len(fields)}")
            ts = _timestamp(fields[0].strip())
            o, h, low, c, v = (_float(f.strip(), n) for f, n in zip(fields[1:], COLUMNS[1:], strict=True))
            if min(o, h, low, c) <= 0:
                raise _RowError("prices must be positive")
            if v < 0:
                raise _RowError("volume must not be negative")
            if low > min(o, c) or h < max(o, c) or low > h:
                raise _RowError("high/low do not contain open/close")
            if step is not None and ts % step:
                raise _RowError(f"timestamp_ms {ts} is not aligned to {timeframe}")
            if max_ts_ms is not None and ts > max_ts_ms:
                raise _RowError(f"timestamp_ms {ts} is in the future")
            if last_ts is not None and ts <= last_ts:
                raise _RowError(f"timestamp_ms {ts} is not after the previous row ({last_ts})")
        except _RowError as exc:
            rejected_count += 1
            if len(rejected) < MAX_REPORTED_REJECTIONS:
                rejected.append(RejectedRow(number, str(exc)))
            continue
        rows.append((ts, o, h, low, c, v))
        last_ts = ts
        if len(rows) > max_rows:
            raise ValueError(f"more than {max_rows} rows")
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    candles = Candles.from_arrays(
        np.array([r[0] for r in rows], dtype=np.int64), table[:, 1], table[:, 2], table[:, 3], table[:, 4], table[:, 5]
    )
    return CsvImportResult(candles, rejected, rejected_count)
