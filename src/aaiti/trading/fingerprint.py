"""Reproducibility fingerprints: hashes of what went into a backtest and what came out.

``fingerprint(candles, config, trades, code_version)`` returns SHA-256 hex digests of

- ``data``: every symbol's candle arrays (sorted by symbol; ``ts`` as little-endian int64, OHLCV as
  little-endian float64, each prefixed by its length), so any changed bar changes the hash;
- ``config``: the canonical JSON of the configuration (sorted keys, no whitespace, floats in Python's shortest
  round-trip form, NaN refused) -- include the strategy name and parameters in it;
- ``trades``: the canonical JSON of the trade list;
- ``code``: the code-version string supplied by the caller (e.g. the package version plus a git commit);

and ``combined``, the hash of the four. Rerunning the same configuration on the same data with the same code
yields the same fingerprint; the engines are deterministic (no clock, no randomness without a seed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from aaiti.trading.candles import Candles
from aaiti.trading.portfolio import Trade, TradeLog


@dataclass(frozen=True, slots=True)
class Fingerprint:
    data: str
    config: str
    trades: str
    code: str
    combined: str

    def to_dict(self) -> dict[str, str]:
        return {
            "data": self.data,
            "config": self.config,
            "trades": self.trades,
            "code": self.code,
            "combined": self.combined,
        }


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, compact separators, no NaN/infinity."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def hash_candles(candles: Candles | Mapping[str, Candles]) -> str:
    items = {"": candles} if isinstance(candles, Candles) else dict(candles)
    h = hashlib.sha256()
    for sym in sorted(items):
        c = items[sym]
        h.update(sym.encode("utf-8") + b"\0")
        h.update(np.int64(len(c)).astype("<i8").tobytes())
        h.update(np.ascontiguousarray(c.ts, dtype="<i8").tobytes())
        for col in (c.open, c.high, c.low, c.close, c.volume):
            h.update(np.ascontiguousarray(col, dtype="<f8").tobytes())
    return h.hexdigest()


def _trade_rows(trades: TradeLog | Sequence[Trade] | Sequence[Mapping[str, Any]], symbols: Sequence[str]) -> list[Any]:
    if isinstance(trades, TradeLog):
        return [t.to_dict() for t in trades.records(list(symbols))]
    return [t.to_dict() if isinstance(t, Trade) else dict(t) for t in trades]


def fingerprint(
    candles: Candles | Mapping[str, Candles],
    config: Any,
    trades: TradeLog | Sequence[Trade] | Sequence[Mapping[str, Any]],
    code_version: str,
    symbols: Sequence[str] = ("asset",),
) -> Fingerprint:
    """Fingerprint of one backtest (``symbols`` names the trade log's symbol indices when a ``TradeLog`` is
    given)."""
    data_h = hash_candles(candles)
    config_h = hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()
    trades_h = hashlib.sha256(canonical_json(_trade_rows(trades, symbols)).encode("utf-8")).hexdigest()
    code_h = hashlib.sha256(code_version.encode("utf-8")).hexdigest()
    combined = hashlib.sha256(f"{data_h}:{config_h}:{trades_h}:{code_h}".encode("ascii")).hexdigest()
    return Fingerprint(data_h, config_h, trades_h, code_h, combined)
