"""Prometheus metrics for market data and the live feed (default registry, exported at ``/metrics``).

Label values are bounded: ``endpoint`` is a path template (``/coins/{id}/ohlc``), never a raw URL; ``outcome`` and
``reason`` come from fixed sets; ``symbol`` is capped at :data:`MAX_SYMBOL_LABELS` distinct tickers, beyond which
the per-symbol gauge is simply not updated (the cardinality of a scrape must not grow with user input).
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import Counter, Gauge, Histogram

Outcome = Literal[
    "ok",
    "http_4xx",
    "http_404",
    "http_429",
    "http_5xx",
    "redirect",
    "timeout",
    "connect",
    "transport",
    "too_large",
    "bad_payload",
    "circuit_open",
    "paused",
    "budget",
]

BREAKER_STATE_VALUE: Final[dict[str, int]] = {"closed": 0, "half_open": 1, "open": 2}
MAX_SYMBOL_LABELS: Final = 200

UPSTREAM_REQUESTS = Counter(
    "aaiti_upstream_requests",
    "Upstream HTTP attempts by endpoint template and outcome (short-circuited calls included).",
    ["upstream", "endpoint", "outcome"],
)
UPSTREAM_RETRIES = Counter(
    "aaiti_upstream_retries",
    "Retries scheduled after a retryable failure.",
    ["upstream", "endpoint", "reason"],
)
UPSTREAM_LATENCY = Histogram(
    "aaiti_upstream_request_duration_seconds",
    "Duration of upstream HTTP attempts.",
    ["upstream", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
BREAKER_STATE = Gauge(
    "aaiti_upstream_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
)
RETRY_AFTER_PAUSES = Counter(
    "aaiti_upstream_pauses",
    "Times the whole client paused because the upstream asked it to (Retry-After or 429).",
    ["upstream"],
)
CACHE_REQUESTS = Counter(
    "aaiti_market_cache_requests",
    "Market cache lookups by cache and result (hit, miss, stale).",
    ["cache", "result"],
)
REJECTED_PAYLOADS = Counter(
    "aaiti_market_rejected_payloads",
    "Upstream payloads or entries refused by validation.",
    ["upstream", "endpoint", "reason"],
)
DATA_AGE = Gauge(
    "aaiti_market_data_age_seconds",
    "Age of the price last served per symbol.",
    ["symbol"],
)
FEED_LAG = Histogram(
    "aaiti_feed_lag_seconds",
    "Delay between a price's as_of and its publication to subscribers.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
SOCKET_MESSAGES_SENT = Counter(
    "aaiti_socket_messages_sent",
    "Socket.IO messages handed to the server for delivery, by event name.",
    ["event"],
)
SOCKET_MESSAGES_DROPPED = Counter(
    "aaiti_socket_messages_dropped",
    "Socket.IO messages dropped (coalesced, stale, or a slow client's buffer full), by event and reason.",
    ["event", "reason"],
)

_symbols_seen: set[str] = set()


def set_breaker_state(upstream: str, state: str) -> None:
    BREAKER_STATE.labels(upstream).set(BREAKER_STATE_VALUE.get(state, 0))


def observe_data_age(symbol: str, age_s: float) -> None:
    """Set the per-symbol age gauge unless that would add a label beyond :data:`MAX_SYMBOL_LABELS`."""
    if symbol not in _symbols_seen:
        if len(_symbols_seen) >= MAX_SYMBOL_LABELS:
            return
        _symbols_seen.add(symbol)
    DATA_AGE.labels(symbol).set(max(0.0, age_s))


def forget_symbol(symbol: str) -> None:
    """Drop a symbol's age series (it is no longer tracked), freeing its label slot."""
    if symbol in _symbols_seen:
        _symbols_seen.discard(symbol)
        DATA_AGE.remove(symbol)


CANDLE_BUS_DROPPED = Counter(
    "aaiti_candle_bus_dropped",
    "Closed live candles dropped because a subscriber's queue was full (drop-oldest).",
)
