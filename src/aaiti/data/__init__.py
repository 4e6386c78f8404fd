"""Real exchange candles bundled with the package (see NOTICE for provenance and licences).

``bundled_datasets()`` lists them; ``load_bundled(name)`` parses one into :class:`~aaiti.trading.candles.Candles`.
Names are ``BASE-QUOTE_TIMEFRAME`` with an optional ``_exchange`` suffix (no suffix = Bitstamp).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from aaiti.trading.candles import Candles


@dataclass(frozen=True, slots=True)
class BundledDataset:
    name: str
    symbol: str
    quote: str
    timeframe: str
    exchange: str


def _parse_name(name: str) -> BundledDataset:
    pair, _, rest = name.partition("_")
    timeframe, _, exchange = rest.partition("_")
    base, _, quote = pair.partition("-")
    return BundledDataset(name, base, quote, timeframe, exchange or "bitstamp")


def bundled_datasets() -> list[BundledDataset]:
    files = resources.files(__name__)
    names = sorted(p.name.removesuffix(".csv.gz") for p in files.iterdir() if p.name.endswith(".csv.gz"))
    return [_parse_name(n) for n in names]


@cache
def load_bundled(name: str) -> Candles:
    """Parse a bundled file. Raises ``KeyError`` for an unknown name."""
    if name not in {d.name for d in bundled_datasets()}:
        raise KeyError(name)
    raw = resources.files(__name__).joinpath(f"{name}.csv.gz").read_bytes()
    text = gzip.decompress(raw).decode("ascii")
    table = np.loadtxt(text.splitlines()[1:], delimiter=",", dtype=np.float64, ndmin=2)
    return Candles.from_arrays(
        table[:, 0].astype(np.int64), table[:, 1], table[:, 2], table[:, 3], table[:, 4], table[:, 5]
    )
