"""Strict checks on every upstream payload. Pure functions: no I/O, no clock (``now`` is passed in).

Anything that fails raises :class:`PayloadRejected` with a reason from a small fixed set (used as a metric label),
so a bad body is counted and dropped, and the last good value keeps being served. Per-coin problems inside an
otherwise valid ``/simple/price`` body are reported per coin instead, so one bad entry does not discard the rest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, NoReturn

import numpy as np

from aaiti.market.provider import SymbolInfo
from aaiti.market.symbols import is_valid_coin_id
from aaiti.trading.candles import FloatArray, IntArray

RejectReason = Literal["html", "not_json", "truncated_json", "schema", "bad_value", "timestamp", "empty", "jump"]

#: Nothing CoinGecko serves predates this (2009-01-01T00:00Z); earlier times mean seconds/ms confusion or garbage.
MIN_PLAUSIBLE_MS = 1_230_768_000_000

#: Spacings CoinGecko is documented to deliver (README "automatic granularity"), in milliseconds.
KNOWN_GRANULARITIES_MS: tuple[int, ...] = (
    5 * 60_000,
    30 * 60_000,
    3_600_000,
    4 * 3_600_000,
    86_400_000,
    4 * 86_400_000,
)


class PayloadRejected(Exception):
    """An upstream body that must not be used. ``reason`` is one of :data:`RejectReason`."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


def _reject(reason: RejectReason, detail: str) -> NoReturn:
    raise PayloadRejected(reason, detail)


def _refuse_constant(name: str) -> float:
    _reject("bad_value", f"non-finite literal {name}")


def decode_json(body: bytes, content_type: str | None) -> object:
    """Bytes → JSON value. Refuses HTML (CDN error pages served with 200), NaN/Infinity literals and cut bodies."""
    if content_type is not None and "html" in content_type.lower():
        _reject("html", f"content-type {content_type}")
    stripped = body.lstrip()
    if stripped[:1] == b"<":
        _reject("html", "body starts with '<'")
    if not stripped:
        _reject("empty", "empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        _reject("not_json", "body is not UTF-8")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) - 1:
            _reject("truncated_json", f"body ends early at byte {exc.pos}")
        _reject("not_json", exc.msg)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _reject("schema", f"{what} is {type(value).__name__}, expected a number")
    try:
        result = float(value)
    except OverflowError:
        _reject("bad_value", f"{what} overflows a float")
    if not math.isfinite(result):
        _reject("bad_value", f"{what} is not finite")
    return result


def _price(value: object, what: str, max_price: float) -> float:
    result = _number(value, what)
    if result <= 0.0:
        _reject("bad_value", f"{what} {result} is not positive")
    if result > max_price:
        _reject("bad_value", f"{what} {result} exceeds the plausible maximum {max_price}")
    return result


def _timestamp_ms(value: object, what: str, now_ms: int, max_skew_ms: int) -> int:
    number = _number(value, what)
    if number != int(number):
        _reject("timestamp", f"{what} {number} is not a whole number of milliseconds")
    ts = int(number)
    if ts < MIN_PLAUSIBLE_MS or ts > now_ms + max_skew_ms:
        _reject("timestamp", f"{what} {ts} is outside the plausible range")
    return ts


def to_ms(when: datetime) -> int:
    """Aware datetime → epoch milliseconds."""
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    return round(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds → aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class RawQuote:
    price: float
    change_24h_pct: float | None
    observed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SimplePriceResult:
    quotes: dict[str, RawQuote]
    rejected: dict[str, RejectReason] = field(default_factory=dict)


def parse_simple_price(
    body: object,
    ids: Iterable[str],
    vs: str,
    *,
    now: datetime,
    max_price: float,
    max_skew_s: float = 300.0,
) -> SimplePriceResult:
    """Validate a ``/simple/price`` body for ``ids``.

    Ids missing from the body are unknown upstream (CoinGecko drops them silently) and are simply absent. An entry
    that is present but malformed lands in ``rejected`` with its reason.
    """
    if not isinstance(body, Mapping):
        _reject("schema", "expected an object keyed by coin id")
    now_ms = to_ms(now)
    skew_ms = int(max_skew_s * 1000)
    quotes: dict[str, RawQuote] = {}
    rejected: dict[str, RejectReason] = {}
    for coin in ids:
        if coin not in body:
            continue
        entry = body[coin]
        try:
            if not isinstance(entry, Mapping):
                _reject("schema", f"{coin} entry is {type(entry).__name__}")
            if vs not in entry:
                _reject("schema", f"{coin} has no {vs} price")
            price = _price(entry[vs], f"{coin}.{vs}", max_price)
            change_raw = entry.get(f"{vs}_24h_change")
            change = None if change_raw is None else _number(change_raw, f"{coin}.{vs}_24h_change")
            updated_raw = entry.get("last_updated_at")
            observed = None
            if updated_raw is not None:
                seconds = _number(updated_raw, f"{coin}.last_updated_at")
                observed = from_ms(_timestamp_ms(seconds * 1000, f"{coin}.last_updated_at", now_ms, skew_ms))
            quotes[coin] = RawQuote(price, change, observed)
        except PayloadRejected as exc:
            rejected[coin] = exc.reason
    return SimplePriceResult(quotes, rejected)


@dataclass(frozen=True, slots=True)
class PricePoints:
    """``/market_chart`` prices: sample times (epoch ms, strictly increasing) and prices."""

    ts: IntArray
    price: FloatArray


def parse_market_chart(body: object, *, now: datetime, max_price: float, max_skew_s: float = 300.0) -> PricePoints:
    """Validate a ``/coins/{id}/market_chart`` body. Any bad point rejects the whole body (no partial series)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("prices"), list):
        _reject("schema", "expected an object with a 'prices' list")
    raw = body["prices"]
    if not raw:
        _reject("empty", "no price points")
    now_ms = to_ms(now)
    skew_ms = int(max_skew_s * 1000)
    ts = np.empty(len(raw), dtype=np.int64)
    price = np.empty(len(raw), dtype=np.float64)
    for i, point in enumerate(raw):
        if not isinstance(point, list) or len(point) != 2:
            _reject("schema", f"point {i} is not [ms, price]")
        ts[i] = _timestamp_ms(point[0], f"point {i} time", now_ms, skew_ms)
        price[i] = _price(point[1], f"point {i} price", max_price)
    if len(ts) > 1 and not bool(np.all(np.diff(ts) > 0)):
        _reject("timestamp", "point times are not strictly increasing")
    return PricePoints(ts, price)


@dataclass(frozen=True, slots=True)
class OhlcRows:
    """``/ohlc`` rows as received: ``close_ts`` is the candle's **close** time (epoch ms)."""

    close_ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray


def parse_ohlc(body: object, *, now: datetime, max_price: float, max_skew_s: float = 300.0) -> OhlcRows:
    """Validate a ``/coins/{id}/ohlc`` body: ``[[close_ms, o, h, l, c], ...]`` with consistent OHLC."""
    if not isinstance(body, list):
        _reject("schema", "expected a list of [ms, o, h, l, c]")
    if not body:
        _reject("empty", "no candles")
    now_ms = to_ms(now)
    skew_ms = int(max_skew_s * 1000)
    n = len(body)
    ts = np.empty(n, dtype=np.int64)
    cols = np.empty((4, n), dtype=np.float64)
    for i, row in enumerate(body):
        if not isinstance(row, list) or len(row) != 5:
            _reject("schema", f"row {i} is not [ms, o, h, l, c]")
        ts[i] = _timestamp_ms(row[0], f"row {i} time", now_ms, skew_ms)
        o, h, low, c = (_price(v, f"row {i} {k}", max_price) for v, k in zip(row[1:], "ohlc", strict=True))
        if h < max(o, c, low) or low > min(o, c):
            _reject("bad_value", f"row {i} high/low do not contain open/close")
        cols[:, i] = (o, h, low, c)
    if n > 1 and not bool(np.all(np.diff(ts) > 0)):
        _reject("timestamp", "candle times are not strictly increasing")
    return OhlcRows(ts, cols[0].copy(), cols[1].copy(), cols[2].copy(), cols[3].copy())


def parse_search(body: object, *, limit: int = 25) -> list[SymbolInfo]:
    """Validate a ``/search`` body; malformed coin entries are skipped, a malformed body is rejected."""
    if not isinstance(body, Mapping) or not isinstance(body.get("coins"), list):
        _reject("schema", "expected an object with a 'coins' list")
    found: list[SymbolInfo] = []
    for coin in body["coins"]:
        if not isinstance(coin, Mapping):
            continue
        coin_id, symbol, name, rank = (coin.get(k) for k in ("id", "symbol", "name", "market_cap_rank"))
        if not (isinstance(coin_id, str) and is_valid_coin_id(coin_id)):
            continue
        if not (isinstance(symbol, str) and isinstance(name, str) and 0 < len(symbol) <= 30):
            continue
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            rank = None
        found.append(SymbolInfo(symbol.upper(), coin_id, name[:100], rank))
        if len(found) >= limit:
            break
    return found


def measure_granularity(ts: IntArray, expected_ms: int) -> int:
    """Spacing actually present in ``ts``, snapped to a documented CoinGecko granularity.

    The median gap is used so a trailing "now" point or one missing sample does not change the answer. Fewer than
    three points cannot be measured and keep ``expected_ms``. Irregular data is rejected rather than guessed.
    """
    if len(ts) < 3:
        return expected_ms
    median = float(np.median(np.diff(ts)))
    for known in KNOWN_GRANULARITIES_MS:
        if abs(median - known) <= 0.2 * known:
            return known
    _reject("schema", f"points are {median / 1000:.0f}s apart, not a known granularity")


class JumpGuard:
    """Refuses a value that moved more than ``threshold`` (0.5 = 50 %) from the last accepted one, until it has been
    seen ``confirmations`` times in a row (each within ``tolerance`` of the first sighting).

    This stops a single corrupted tick (a 1000× price) from reaching charts and bots, while a real crash that
    persists is accepted on the next poll.
    """

    def __init__(self, threshold: float = 0.5, confirmations: int = 2, tolerance: float = 0.05) -> None:
        if threshold <= 0 or confirmations < 1 or tolerance < 0:
            raise ValueError("threshold > 0, confirmations >= 1, tolerance >= 0")
        self.threshold = threshold
        self.confirmations = confirmations
        self.tolerance = tolerance
        self._last: dict[str, float] = {}
        self._pending: dict[str, tuple[float, int]] = {}

    def last(self, key: str) -> float | None:
        return self._last.get(key)

    def check(self, key: str, value: float) -> bool:
        """True when ``value`` is accepted (and becomes the reference), False when it is held back."""
        last = self._last.get(key)
        if last is None or abs(value / last - 1.0) <= self.threshold:
            self._last[key] = value
            self._pending.pop(key, None)
            return True
        candidate = self._pending.get(key)
        if candidate is not None and abs(value / candidate[0] - 1.0) <= self.tolerance:
            seen = candidate[1] + 1
        else:
            candidate, seen = (value, 0), 1
        if seen >= self.confirmations:
            self._last[key] = value
            self._pending.pop(key, None)
            return True
        self._pending[key] = (candidate[0], seen)
        return False
