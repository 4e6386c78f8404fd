"""CoinGecko: the one module that owns an outbound HTTP client.

Layers, bottom up:

- :class:`CoinGeckoClient` — a resilient GET: one ``httpx.AsyncClient`` (no redirects, connect/read timeouts, a
  per-attempt deadline, a streamed size cap), one leaky-bucket limiter shared by every call so the configured budget
  holds in every window, retries only on connect errors, timeouts, 429 and 5xx with capped exponential backoff and
  full jitter, a retry budget, ``Retry-After`` (seconds or HTTP-date, clamped) pausing the *whole* client, and a
  circuit breaker. Every body is validated by the caller's parser inside the client, so a bad body counts as a
  failure and never reaches a cache.
- :class:`CoinGeckoProvider` — the :class:`~aaiti.market.provider.MarketDataProvider`: batched ``/simple/price``,
  candles from ``/market_chart`` or ``/ohlc`` chosen by CoinGecko's automatic granularity, ``/search``; TTL caches
  with single-flight; stale-while-error. It never invents a value: it serves the last good one flagged ``stale``
  with its original ``as_of``, or raises :class:`~aaiti.core.errors.Unavailable`.

Why not httpx-retries/hishel (STACK §3a): pausing the whole client on Retry-After, the breaker, the retry budget and
stale-on-error all need state shared across requests, which a per-request transport cannot hold; the TTL caches
here keep the last good value after expiry, which an HTTP cache would evict.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np
import structlog
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from aaiti.core.clock import Clock, SystemClock
from aaiti.core.errors import Invalid, TooManyRequests, Unavailable
from aaiti.market import metrics
from aaiti.market.provider import BreakerState, CandleKind, CandleSeries, PriceQuote, ProviderStatus, SymbolInfo
from aaiti.market.resample import between, check_resample, completed, format_ms, points_to_candles, resample
from aaiti.market.symbols import DEFAULT_SYMBOLS, SymbolResolver, is_valid_coin_id
from aaiti.market.validation import (
    JumpGuard,
    PayloadRejected,
    SimplePriceResult,
    decode_json,
    from_ms,
    measure_granularity,
    parse_market_chart,
    parse_ohlc,
    parse_search,
    parse_simple_price,
    to_ms,
)
from aaiti.trading.candles import TIMEFRAME_MS, Candles

log = structlog.get_logger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

UPSTREAM: Final = "coingecko"
PUBLIC_BASE_URL: Final = "https://api.coingecko.com/api/v3"
PRO_BASE_URL: Final = "https://pro-api.coingecko.com/api/v3"
KEY_HEADERS: Final = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
DAY_MS: Final = 86_400_000
#: ``days`` values accepted by ``/ohlc`` on the public plans; ``/market_chart`` is asked the same values so the
#: cache keys repeat.
DAYS_CHOICES: Final = (1, 7, 14, 30, 90, 180, 365)
_ERROR_BODY_PEEK: Final = 4096


class CoinGeckoConfig(BaseModel):
    """Settings of the CoinGecko client (the application maps its own settings into this).

    Budget: at most ``budget_calls`` upstream requests in any window of ``budget_period_s`` (retries included).
    The default (10/min) suits the keyless tier, which CoinGecko does not publish and users report at 5-15/min;
    a demo key allows ~30-100/min.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_kind: Literal["none", "demo", "pro"] = "none"
    api_key: SecretStr | None = None
    base_url: str | None = Field(default=None, description="override, e.g. a local fake; default from key_kind")
    vs_currency: str = Field(default="usd", pattern=r"^[a-z]{3,5}$")

    budget_calls: int = Field(default=10, ge=1)
    budget_period_s: float = Field(default=60.0, gt=0)

    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    request_deadline_s: float = Field(default=15.0, gt=0, description="one attempt, body included")
    operation_deadline_s: float = Field(default=20.0, gt=0, description="all attempts, waits included")
    max_response_bytes: int = Field(default=5_000_000, ge=1024)

    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_cap_s: float = Field(default=8.0, ge=0)
    retry_after_max_s: float = Field(default=120.0, ge=0)
    retry_budget_ratio: float = Field(default=0.1, ge=0, le=1)
    retry_budget_min: int = Field(default=3, ge=0)

    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)

    price_ttl_s: float = Field(default=30.0, gt=0)
    stale_after_s: float = Field(default=120.0, gt=0, description="a quote older than this is stale")
    failure_backoff_s: float = Field(default=5.0, ge=0, description="no refetch of a failed price for this long")
    candles_ttl_s: float = Field(default=300.0, gt=0)
    search_ttl_s: float = Field(default=600.0, gt=0)
    search_calls_per_period: int = Field(
        default=3,
        ge=1,
        description="cap on /search calls (user-driven) per budget period, so typing in a search "
        "box or asking for random tickers cannot spend the budget the price poller needs",
    )
    max_ids_per_request: int = Field(default=50, ge=1, le=250)
    max_symbols_per_call: int = Field(default=250, ge=1)

    jump_threshold: float = Field(default=0.5, gt=0)
    jump_confirmations: int = Field(default=2, ge=1)
    jump_tolerance: float = Field(default=0.05, ge=0)
    max_price: float = Field(default=1e12, gt=0)
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    max_history_days: int | None = Field(
        default=None, ge=1, description="default: 365 without a paid key (CoinGecko error 10012), else unlimited"
    )
    trust_env: bool = Field(default=True, description="honour HTTP(S)_PROXY / NO_PROXY from the environment")

    @model_validator(mode="after")
    def _key_matches_kind(self) -> CoinGeckoConfig:
        has_key = self.api_key is not None and bool(self.api_key.get_secret_value())
        if self.key_kind == "none" and has_key:
            raise ValueError("api_key given but key_kind is 'none'; set key_kind to 'demo' or 'pro'")
        if self.key_kind != "none" and not has_key:
            raise ValueError(f"key_kind {self.key_kind!r} needs an api_key")
        return self

    @property
    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return PRO_BASE_URL if self.key_kind == "pro" else PUBLIC_BASE_URL

    @property
    def history_limit_days(self) -> int | None:
        if self.max_history_days is not None:
            return self.max_history_days
        return None if self.key_kind == "pro" else 365


class UpstreamError(Exception):
    """A failed upstream operation. ``outcome`` is a bounded metric label; ``detail`` is safe to show (no key)."""

    def __init__(
        self,
        outcome: metrics.Outcome,
        detail: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome: metrics.Outcome = outcome
        self.detail = detail
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

    @property
    def counts_against_breaker(self) -> bool:
        """Failures that say the upstream is unusable; 400/404 are answers, pauses and open circuits are ours."""
        if self.outcome in ("http_404", "paused", "budget", "circuit_open"):
            return False
        if self.outcome == "http_4xx":
            return self.status in (401, 403)
        return True


class UpstreamNotFound(UpstreamError):
    """404: the coin id does not exist upstream."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` → seconds from ``now`` (RFC 9110 §10.2.3: delta-seconds or HTTP-date); ``None`` if absent
    or unreadable. A date in the past gives 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _error_message(body: bytes) -> str:
    """The message inside any of CoinGecko's three error shapes, or a short safe excerpt."""
    try:
        data: Any = decode_json(body, None)
    except PayloadRejected:
        return body[:80].decode("utf-8", "replace").strip()
    for path in (("error",), ("status", "error_message"), ("error", "status", "error_message")):
        node = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            code = data.get("error_code") if isinstance(data, dict) else None
            return f"{node[:200]}" + (f" (code {code})" if isinstance(code, int) else "")
    return ""


class CircuitBreaker:
    """closed → open after ``threshold`` consecutive failed operations; after ``cooldown_s`` one probe is let
    through (half-open); its success closes the circuit, its failure re-opens it for another cool-down."""

    def __init__(self, clock: Clock, threshold: int, cooldown_s: float, name: str = UPSTREAM) -> None:
        self._clock = clock
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._name = name
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        metrics.set_breaker_state(name, "closed")

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock.monotonic() - self._opened_at >= self._cooldown_s:
            return "half_open"
        return "open"

    @property
    def retry_at(self) -> float | None:
        """Monotonic time the next probe is allowed (``None`` when closed)."""
        return None if self._opened_at is None else self._opened_at + self._cooldown_s

    def acquire(self) -> bool:
        """Permission for one operation; True if it is the half-open probe. Raises ``UpstreamError`` if open."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._probing:
            self._probing = True
            metrics.set_breaker_state(self._name, "half_open")
            return True
        raise UpstreamError("circuit_open", "circuit breaker open after repeated upstream failures")

    def release_probe(self) -> None:
        self._probing = False

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("circuit_closed", upstream=self._name)
        self._failures = 0
        self._opened_at = None
        metrics.set_breaker_state(self._name, "closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            if self._opened_at is None:
                log.warning("circuit_opened", upstream=self._name, failures=self._failures)
            self._opened_at = self._clock.monotonic()
            metrics.set_breaker_state(self._name, "open")


class CoinGeckoClient:
    """Resilient JSON GETs against CoinGecko. See the module docstring for the policy.

    ``transport`` (tests: a real loopback server needs none; ``httpx.MockTransport`` works too), ``clock`` (pause,
    breaker, deadlines and budget windows use ``clock.monotonic()``), ``rng`` (jitter) and ``sleep`` (every wait the
    client makes on purpose) are injectable so tests are deterministic and fast.
    """

    def __init__(
        self,
        config: CoinGeckoConfig,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._sleep: Sleep = sleep or asyncio.sleep
        headers = {"accept": "application/json", "user-agent": "aaiti/0.1 (+self-hosted)"}
        if config.key_kind != "none" and config.api_key is not None:
            headers[KEY_HEADERS[config.key_kind]] = config.api_key.get_secret_value()
        self._http = httpx.AsyncClient(
            base_url=config.resolved_base_url,
            headers=headers,
            transport=transport,
            follow_redirects=False,
            trust_env=config.trust_env,
            timeout=httpx.Timeout(
                connect=config.connect_timeout_s,
                read=config.read_timeout_s,
                write=config.read_timeout_s,
                pool=config.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        )
        # A leaky bucket of capacity ``burst`` draining ``rate`` per period lets through at most burst + rate calls
        # in any window of one period; splitting the budget 20/80 keeps that sum at the budget.
        burst = max(1, config.budget_calls // 5)
        rate = max(1, config.budget_calls - burst)
        self._limiter = AsyncLimiter(burst, burst * config.budget_period_s / rate)
        self._breaker = CircuitBreaker(self._clock, config.breaker_failure_threshold, config.breaker_cooldown_s)
        self._paused_until = 0.0
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self.last_success: datetime | None = None
        self.last_error: str | None = None

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        await self._http.aclose()

    def budget_used(self) -> int:
        """Upstream requests sent in the last budget period (retries included)."""
        self._prune(self._requests)
        return len(self._requests)

    def paused_until(self) -> datetime | None:
        """Wall time until which the whole client waits because the upstream asked it to."""
        remaining = self._paused_until - self._clock.monotonic()
        return self._clock.now() + timedelta(seconds=remaining) if remaining > 0 else None

    def _prune(self, window: deque[float]) -> None:
        horizon = self._clock.monotonic() - self.config.budget_period_s
        while window and window[0] <= horizon:
            window.popleft()

    def _pause(self, seconds: float) -> None:
        seconds = min(max(0.0, seconds), self.config.retry_after_max_s)
        until = self._clock.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            metrics.RETRY_AFTER_PAUSES.labels(UPSTREAM).inc()
            log.warning("upstream_paused", upstream=UPSTREAM, seconds=round(seconds, 3))

    def _retry_allowed(self) -> bool:
        self._prune(self._requests)
        self._prune(self._retries)
        allowed = max(self.config.retry_budget_min, self.config.retry_budget_ratio * len(self._requests))
        return len(self._retries) < allowed

    def _backoff(self, attempt: int) -> float:
        """Full jitter (AWS): uniform in [0, min(cap, base·2^attempt)]."""
        ceiling = min(self.config.backoff_cap_s, self.config.backoff_base_s * (2.0**attempt))
        return self._rng.uniform(0.0, ceiling)

    async def get(self, endpoint: str, path: str, params: Mapping[str, str], parse: Callable[[object], T]) -> T:
        """GET ``path`` and return ``parse(json_body)``.

        ``endpoint`` is the path template used as a metric label. ``parse`` raises ``PayloadRejected`` for a body
        that must not be used. Raises :class:`UpstreamError` (or :class:`UpstreamNotFound`) on failure.
        """
        try:
            probe = self._breaker.acquire()
        except UpstreamError as exc:
            metrics.UPSTREAM_REQUESTS.labels(UPSTREAM, endpoint, exc.outcome).inc()
            raise  # last_error keeps the failure that opened the circuit
        deadline = self._clock.monotonic() + self.config.operation_deadline_s
        attempts = 1 if probe else self.config.max_attempts
        try:
            for attempt in range(attempts):
                try:
                    await self._wait_for_pause(deadline)
                    await self._acquire_budget(deadline)
                    result = await self._attempt(endpoint, path, params, parse, deadline)
                except UpstreamError as exc:
                    if not await self._should_retry(exc, endpoint, attempt, attempts, deadline):
                        self._finish_failure(exc, endpoint)
                        raise
                    continue
                self._breaker.record_success()
                self.last_success = self._clock.now()
                self.last_error = None
                return result
            raise AssertionError("unreachable: the last attempt either returns or raises")
        finally:
            if probe:
                self._breaker.release_probe()

    async def _should_retry(
        self, exc: UpstreamError, endpoint: str, attempt: int, attempts: int, deadline: float
    ) -> bool:
        delay = self._backoff(attempt)
        if exc.outcome == "http_429" and not exc.retry_after:
            self._pause(delay)  # a 429 without Retry-After still means the whole client is too fast
        if not exc.retryable or attempt + 1 >= attempts or not self._retry_allowed():
            return False
        if exc.retry_after or exc.outcome == "http_429":
            delay = 0.0  # the whole-client pause covers the wait
        waits_until = max(self._clock.monotonic() + delay, self._paused_until)
        if waits_until >= deadline:
            return False
        self._retries.append(self._clock.monotonic())
        metrics.UPSTREAM_RETRIES.labels(UPSTREAM, endpoint, exc.outcome).inc()
        if delay > 0:
            await self._sleep(delay)
        return True

    def _finish_failure(self, exc: UpstreamError, endpoint: str) -> None:
        self.last_error = exc.detail
        if exc.counts_against_breaker:
            self._breaker.record_failure()
        elif exc.outcome in ("http_404", "http_4xx"):
            self._breaker.record_success()
        if exc.outcome in ("paused", "budget"):
            # refused locally, before any request: counted here because _attempt never saw it
            metrics.UPSTREAM_REQUESTS.labels(UPSTREAM, endpoint, exc.outcome).inc()
            log.info("upstream_skipped", upstream=UPSTREAM, endpoint=endpoint, outcome=exc.outcome, detail=exc.detail)
            return
        log.warning("upstream_failed", upstream=UPSTREAM, endpoint=endpoint, outcome=exc.outcome, detail=exc.detail)

    async def _wait_for_pause(self, deadline: float) -> None:
        while (wait := self._paused_until - self._clock.monotonic()) > 0:
            if self._clock.monotonic() + wait >= deadline:
                raise UpstreamError("paused", f"upstream asked us to wait {wait:.1f}s more (Retry-After)")
            await self._sleep(wait)

    async def _acquire_budget(self, deadline: float) -> None:
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            raise UpstreamError("budget", "operation deadline passed before a request slot was free")
        try:
            await asyncio.wait_for(self._limiter.acquire(), timeout=remaining)
        except TimeoutError:
            raise UpstreamError("budget", "rate-limit budget exhausted for this operation's deadline") from None

    async def _attempt(
        self,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        parse: Callable[[object], T],
        deadline: float,
    ) -> T:
        remaining = min(self.config.request_deadline_s, deadline - self._clock.monotonic())
        if remaining <= 0:
            raise UpstreamError("timeout", "operation deadline passed")
        self._requests.append(self._clock.monotonic())
        outcome: metrics.Outcome = "ok"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                body, content_type = await self._fetch(path, params)
            try:
                return parse(decode_json(body, content_type))
            except PayloadRejected as exc:
                metrics.REJECTED_PAYLOADS.labels(UPSTREAM, endpoint, exc.reason).inc()
                raise UpstreamError("bad_payload", f"rejected {endpoint} body: {exc}") from None
        except UpstreamError as exc:
            outcome = exc.outcome
            raise
        except (TimeoutError, httpx.TimeoutException):
            outcome = "timeout"
            raise UpstreamError("timeout", f"{endpoint} timed out", retryable=True) from None
        except httpx.ConnectError:
            outcome = "connect"
            raise UpstreamError("connect", f"cannot connect for {endpoint}", retryable=True) from None
        except httpx.TransportError as exc:
            outcome = "transport"
            raise UpstreamError(
                "transport", f"{endpoint} connection failed: {type(exc).__name__}", retryable=True
            ) from None
        finally:
            metrics.UPSTREAM_REQUESTS.labels(UPSTREAM, endpoint, outcome).inc()
            metrics.UPSTREAM_LATENCY.labels(UPSTREAM, endpoint).observe(time.perf_counter() - started)

    async def _fetch(self, path: str, params: Mapping[str, str]) -> tuple[bytes, str | None]:
        async with self._http.stream("GET", path, params=dict(params)) as resp:
            status = resp.status_code
            if resp.is_redirect or 300 <= status < 400:
                raise UpstreamError("redirect", f"HTTP {status} redirect not followed", status=status)
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(resp.headers.get("retry-after"), self._clock.now())
                if retry_after is not None:
                    self._pause(retry_after)
                outcome: metrics.Outcome = "http_429" if status == 429 else "http_5xx"
                raise UpstreamError(outcome, f"HTTP {status}", retryable=True, status=status, retry_after=retry_after)
            if status >= 400:
                message = _error_message(await self._read(resp, _ERROR_BODY_PEEK, truncate=True))
                detail = f"HTTP {status}" + (f": {message}" if message else "")
                if status == 404:
                    raise UpstreamNotFound("http_404", detail, status=status)
                raise UpstreamError("http_4xx", detail, status=status)
            body = await self._read(resp, self.config.max_response_bytes, truncate=False)
            return body, resp.headers.get("content-type")

    @staticmethod
    async def _read(resp: httpx.Response, cap: int, *, truncate: bool) -> bytes:
        """Read at most ``cap`` bytes; past the cap either stop (error peeks) or fail without reading on."""
        declared = resp.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > cap:
            raise UpstreamError("too_large", f"declared body of {declared} bytes exceeds {cap}")
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) > cap:
                if truncate:
                    return bytes(buf[:cap])
                raise UpstreamError("too_large", f"body exceeds {cap} bytes")
        return bytes(buf)


# --------------------------------------------------------------------------------------------------- provider


@dataclass(frozen=True, slots=True)
class CandlePlan:
    """Which CoinGecko call yields candles of a timeframe for a range, and the granularity it should return."""

    endpoint: Literal["ohlc", "market_chart"]
    days: int
    expected_ms: int


def ohlc_granularity_ms(days: int) -> int:
    """README: ``/ohlc`` days 1-2 → 30-minute, 3-30 → 4-hour, 31+ → 4-day candles."""
    if days <= 2:
        return 30 * 60_000
    return 4 * 3_600_000 if days <= 30 else 4 * DAY_MS


def chart_granularity_ms(days: int) -> int:
    """README: ``/market_chart`` days=1 → 5-minute, 2-90 → hourly, >90 → daily points."""
    if days <= 1:
        return 5 * 60_000
    return 3_600_000 if days <= 90 else DAY_MS


def plan_candles(timeframe: str, start: datetime, now: datetime, history_limit_days: int | None) -> CandlePlan:
    """Pick the call that gives ``timeframe`` candles from ``start`` to ``now``: real OHLC when its granularity
    divides the timeframe, else price points that do. Raises ``Invalid`` when neither can (never a coarser
    series labelled finer) or when the range is beyond the plan's history limit."""
    tf_ms = TIMEFRAME_MS[timeframe]
    span_days = max(1, math.ceil((now - start).total_seconds() / 86_400))
    if history_limit_days is not None and span_days > history_limit_days:
        raise Invalid(
            f"CoinGecko serves at most {history_limit_days} days of history with this key; "
            f"the range starts {span_days} days ago"
        )
    days = next((d for d in DAYS_CHOICES if d >= span_days), span_days)
    if history_limit_days is not None and days > history_limit_days:
        days = span_days
    if days in DAYS_CHOICES and tf_ms % ohlc_granularity_ms(days) == 0:
        return CandlePlan("ohlc", days, ohlc_granularity_ms(days))
    chart_ms = chart_granularity_ms(days)
    if tf_ms % chart_ms == 0:
        return CandlePlan("market_chart", days, chart_ms)
    reach = {5 * 60_000: 1, 30 * 60_000: 1, 3_600_000: 90}
    finest_days = max((d for g, d in reach.items() if tf_ms % g == 0), default=None)
    hint = f"; {timeframe} candles need a start within the last {finest_days} day(s)" if finest_days else ""
    raise Invalid(
        f"CoinGecko's finest data for a range starting {span_days} day(s) ago is {format_ms(chart_ms)}, "
        f"too coarse for {timeframe}{hint}"
    )


@dataclass(frozen=True, slots=True)
class _ChartData:
    candles: Candles
    granularity_ms: int
    kind: CandleKind
    as_of: datetime


@dataclass(slots=True)
class _PriceEntry:
    price: float
    change_24h_pct: float | None
    as_of: datetime
    refresh_failed: bool = False


@dataclass(slots=True)
class _Cached:
    value: Any
    fresh_until: float
    refresh_failed: bool = False


class CoinGeckoProvider:
    """:class:`~aaiti.market.provider.MarketDataProvider` backed by CoinGecko.

    ``prices`` serves from a per-coin TTL cache; misses are batched into one ``/simple/price`` call per
    ``max_ids_per_request`` ids, and concurrent misses share the in-flight call. Each accepted price passes the
    :class:`~aaiti.market.validation.JumpGuard`. A quote is ``stale`` when its last refresh failed or it is older
    than ``stale_after_s``.
    """

    def __init__(
        self,
        config: CoinGeckoConfig | None = None,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
        known_symbols: Sequence[SymbolInfo] | None = None,
    ) -> None:
        self.config = config or CoinGeckoConfig()
        self._clock = clock or SystemClock()
        self.client = CoinGeckoClient(self.config, clock=self._clock, transport=transport, rng=rng, sleep=sleep)
        self.resolver = SymbolResolver(
            self.search, self._clock, known=DEFAULT_SYMBOLS if known_symbols is None else known_symbols
        )
        self._jump = JumpGuard(self.config.jump_threshold, self.config.jump_confirmations, self.config.jump_tolerance)
        self._prices: dict[str, _PriceEntry] = {}
        self._next_price_refresh: dict[str, float] = {}
        self._price_flights: dict[str, asyncio.Task[None]] = {}
        self._tracked: dict[str, tuple[str, float]] = {}  # ticker -> (coin id, last asked, monotonic)
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._flights: dict[tuple[str, ...], asyncio.Task[None]] = {}
        self._searches: deque[float] = deque()

    @property
    def source(self) -> str:
        return UPSTREAM

    async def aclose(self) -> None:
        for task in [*self._price_flights.values(), *self._flights.values()]:
            task.cancel()
        await self.client.aclose()

    async def ping(self) -> bool:
        """True when CoinGecko answers ``/ping`` now (spends one call of the budget)."""
        try:
            await self.client.get("/ping", "/ping", {}, _parse_ping)
        except UpstreamError:
            return False
        return True

    # ------------------------------------------------------------------------------------------------ prices

    async def prices(self, symbols: Sequence[str]) -> dict[str, PriceQuote]:
        if len(symbols) > self.config.max_symbols_per_call:
            raise Invalid(f"at most {self.config.max_symbols_per_call} symbols per request")
        wanted: dict[str, str] = {}
        for symbol in symbols:
            info = await self.resolver.resolve(symbol, self.config.vs_currency)
            wanted[info.symbol] = info.coin_id
        if not wanted:
            return {}
        asked = self._clock.monotonic()
        self._tracked.update({ticker: (coin, asked) for ticker, coin in wanted.items()})
        await self._refresh_prices(list(dict.fromkeys(wanted.values())))
        now = self._clock.now()
        out: dict[str, PriceQuote] = {}
        for ticker, coin in wanted.items():
            entry = self._prices.get(coin)
            if entry is None:
                continue
            age = (now - entry.as_of).total_seconds()
            stale = entry.refresh_failed or age > self.config.stale_after_s
            out[ticker] = PriceQuote(ticker, entry.price, entry.change_24h_pct, entry.as_of, stale, UPSTREAM)
            metrics.observe_data_age(ticker, age)
        if not out:
            reason = self.client.last_error or "no data received yet"
            raise Unavailable(f"no price available for {', '.join(wanted)}: {reason}")
        return out

    async def _refresh_prices(self, coins: list[str]) -> None:
        mono = self._clock.monotonic()
        due = [c for c in coins if self._next_price_refresh.get(c, -math.inf) <= mono]
        for coin in coins:
            result = "miss" if coin in due else ("hit" if coin in self._prices else "miss_backoff")
            metrics.CACHE_REQUESTS.labels("price", result).inc()
        new = [c for c in due if c not in self._price_flights]
        size = self.config.max_ids_per_request
        for i in range(0, len(new), size):
            batch = new[i : i + size]
            task = asyncio.ensure_future(self._fetch_prices(batch))
            for coin in batch:
                self._price_flights[coin] = task
            task.add_done_callback(functools.partial(self._end_price_flight, tuple(batch)))
        flights = {self._price_flights[c] for c in due if c in self._price_flights}
        if flights:
            await asyncio.gather(*(asyncio.shield(t) for t in flights))

    def _end_price_flight(self, batch: tuple[str, ...], task: asyncio.Task[None]) -> None:
        for coin in batch:
            if self._price_flights.get(coin) is task:
                del self._price_flights[coin]

    async def _fetch_prices(self, batch: list[str]) -> None:
        vs = self.config.vs_currency
        params = {
            "ids": ",".join(batch),
            "vs_currencies": vs,
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }

        def parse(body: object) -> SimplePriceResult:
            return parse_simple_price(
                body,
                batch,
                vs,
                now=self._clock.now(),
                max_price=self.config.max_price,
                max_skew_s=self.config.max_clock_skew_s,
            )

        try:
            result = await self.client.get("/simple/price", "/simple/price", params, parse)
        except UpstreamError:
            self._mark_failed(batch)
            return
        now, mono = self._clock.now(), self._clock.monotonic()
        for coin in batch:
            raw = result.quotes.get(coin)
            reason = result.rejected.get(coin)
            if raw is not None and not self._jump.check(coin, raw.price):
                reason = "jump"
                log.warning("price_jump_held", coin=coin, price=raw.price, last=self._jump.last(coin))
                raw = None
            if raw is None:
                if reason is not None:
                    metrics.REJECTED_PAYLOADS.labels(UPSTREAM, "/simple/price", reason).inc()
                self._mark_failed([coin])
                continue
            self._prices[coin] = _PriceEntry(raw.price, raw.change_24h_pct, raw.observed_at or now)
            self._next_price_refresh[coin] = mono + self.config.price_ttl_s

    def _mark_failed(self, coins: Sequence[str]) -> None:
        retry_at = self._clock.monotonic() + self.config.failure_backoff_s
        for coin in coins:
            if coin in self._prices:
                self._prices[coin].refresh_failed = True
            self._next_price_refresh[coin] = retry_at

    # ----------------------------------------------------------------------------------------------- candles

    async def candles(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> CandleSeries:
        if timeframe not in TIMEFRAME_MS:
            raise Invalid(f"unsupported timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_MS)}")
        if start.tzinfo is None or end.tzinfo is None:
            raise Invalid("start and end must carry a time zone")
        now = self._clock.now()
        if start >= min(end, now):
            raise Invalid("the range is empty or lies in the future")
        info = await self.resolver.resolve(symbol, self.config.vs_currency)
        plan = plan_candles(timeframe, start, now, self.config.history_limit_days)
        data, stale = await self._chart(info.coin_id, plan)
        tf_ms = TIMEFRAME_MS[timeframe]
        try:
            check_resample(data.granularity_ms, tf_ms)
            series = resample(data.candles, data.granularity_ms, timeframe, require_complete=True)
        except ValueError as exc:
            raise Unavailable(f"CoinGecko returned data that cannot make {timeframe} candles: {exc}") from None
        series = between(completed(series, tf_ms, to_ms(now)), to_ms(start), to_ms(end))
        return CandleSeries(
            symbol=info.symbol,
            timeframe=timeframe,
            granularity_ms=data.granularity_ms,
            source=UPSTREAM,
            candles=series,
            kind=data.kind,
            as_of=data.as_of,
            stale=stale,
        )

    async def _chart(self, coin: str, plan: CandlePlan) -> tuple[_ChartData, bool]:
        key = ("chart", plan.endpoint, coin, str(plan.days))
        parse: Callable[[object], _ChartData]
        if plan.endpoint == "ohlc":
            parse = lambda body: self._parse_ohlc(body, plan.expected_ms)  # noqa: E731
        else:
            parse = lambda body: self._parse_chart(body, plan.expected_ms)  # noqa: E731
        endpoint = f"/coins/{{id}}/{plan.endpoint}"
        path = f"/coins/{coin}/{plan.endpoint}"
        params = {"vs_currency": self.config.vs_currency, "days": str(plan.days)}
        entry = await self._cached_get(key, "candles", self.config.candles_ttl_s, endpoint, path, params, parse)
        data: _ChartData = entry.value
        return data, entry.refresh_failed

    def _parse_chart(self, body: object, expected_ms: int) -> _ChartData:
        points = parse_market_chart(
            body, now=self._clock.now(), max_price=self.config.max_price, max_skew_s=self.config.max_clock_skew_s
        )
        granularity = measure_granularity(points.ts, expected_ms)
        candles = points_to_candles(points.ts, points.price, granularity)
        return _ChartData(candles, granularity, "price_points", from_ms(int(points.ts[-1])))

    def _parse_ohlc(self, body: object, expected_ms: int) -> _ChartData:
        rows = parse_ohlc(
            body, now=self._clock.now(), max_price=self.config.max_price, max_skew_s=self.config.max_clock_skew_s
        )
        granularity = measure_granularity(rows.close_ts, expected_ms)
        candles = Candles(
            rows.close_ts - granularity, rows.open, rows.high, rows.low, rows.close, np.full(len(rows.close), np.nan)
        )
        return _ChartData(candles, granularity, "ohlc", from_ms(int(rows.close_ts[-1])))

    # ------------------------------------------------------------------------------------------------ search

    async def search(self, q: str) -> list[SymbolInfo]:
        query = q.strip()
        if not 1 <= len(query) <= 50 or not query.isprintable():
            raise Invalid("search text must be 1-50 printable characters")
        key = ("search", query.lower())
        entry = await self._cached_get(
            key,
            "search",
            self.config.search_ttl_s,
            "/search",
            "/search",
            {"query": query},
            parse_search,
            admit=self._admit_search,
        )
        found: list[SymbolInfo] = entry.value
        return list(found)

    # ------------------------------------------------------------------------------------------ shared cache

    async def _cached_get(
        self,
        key: tuple[str, ...],
        cache: str,
        ttl_s: float,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        parse: Callable[[object], Any],
        admit: Callable[[], None] | None = None,
    ) -> _Cached:
        """TTL cache with single-flight and stale-on-error. Returns the entry (possibly ``refresh_failed``);
        raises ``Invalid`` on 404 and ``Unavailable`` when the upstream fails and nothing is cached. ``admit`` runs
        before a new upstream call (not when joining one in flight) and may refuse it by raising."""
        entry = self._cache.get(key)
        if entry is not None and entry.fresh_until > self._clock.monotonic():
            metrics.CACHE_REQUESTS.labels(cache, "hit").inc()
            return entry
        metrics.CACHE_REQUESTS.labels(cache, "miss").inc()
        task = self._flights.get(key)
        if task is None:
            if admit is not None:
                try:
                    admit()
                except TooManyRequests:
                    if entry is not None:
                        return entry
                    raise
            task = asyncio.ensure_future(self._fill(key, ttl_s, endpoint, path, params, parse))
            self._flights[key] = task
            task.add_done_callback(lambda _t: self._flights.pop(key, None))
        await asyncio.shield(task)
        entry = self._cache.get(key)
        if entry is None:
            raise Unavailable(f"CoinGecko unavailable and nothing cached: {self.client.last_error or 'unknown'}")
        return entry

    async def _fill(
        self,
        key: tuple[str, ...],
        ttl_s: float,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        parse: Callable[[object], Any],
    ) -> None:
        try:
            value = await self.client.get(endpoint, path, params, parse)
        except UpstreamNotFound:
            raise Invalid("unknown symbol: CoinGecko has no such coin") from None
        except UpstreamError:
            if key in self._cache:
                self._cache[key].refresh_failed = True
            return
        if len(self._cache) >= 512 and key not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = _Cached(value, self._clock.monotonic() + ttl_s)

    def _admit_search(self) -> None:
        horizon = self._clock.monotonic() - self.config.budget_period_s
        while self._searches and self._searches[0] <= horizon:
            self._searches.popleft()
        if len(self._searches) >= self.config.search_calls_per_period:
            wait = self._searches[0] - horizon
            raise TooManyRequests("too many new searches against CoinGecko; try again shortly", retry_after=wait)
        self._searches.append(self._clock.monotonic())

    # ------------------------------------------------------------------------------------------------ status

    def status(self) -> ProviderStatus:
        """Freshness of the symbols asked for recently (within twice ``stale_after_s``): a symbol nobody polls any
        more does not keep the provider "stale"."""
        now = self._clock.now()
        horizon = self._clock.monotonic() - 2 * self.config.stale_after_s
        ages: dict[str, float] = {}
        recent = {ticker: coin for ticker, (coin, asked) in self._tracked.items() if asked >= horizon}
        stale = not recent
        for ticker, coin in recent.items():
            entry = self._prices.get(coin)
            if entry is None:
                stale = True
                continue
            ages[ticker] = (now - entry.as_of).total_seconds()
            stale = stale or entry.refresh_failed or ages[ticker] > self.config.stale_after_s
        return ProviderStatus(
            source=UPSTREAM,
            last_success=self.client.last_success,
            data_age_s=max(ages.values()) if ages else None,
            stale=stale,
            budget_used=self.client.budget_used(),
            budget_limit=self.config.budget_calls,
            budget_period_s=self.config.budget_period_s,
            breaker_state=self.client.breaker.state,
            last_error=self.client.last_error,
            paused_until=self.client.paused_until(),
            symbol_age_s=ages,
            detail={
                "key_kind": self.config.key_kind,
                "vs_currency": self.config.vs_currency,
                "host": urlsplit(self.config.resolved_base_url).netloc,
            },
        )


def _parse_ping(body: object) -> bool:
    if not isinstance(body, dict) or "gecko_says" not in body:
        raise PayloadRejected("schema", "ping body has no 'gecko_says'")
    return True


__all__ = [
    "CandlePlan",
    "CircuitBreaker",
    "CoinGeckoClient",
    "CoinGeckoConfig",
    "CoinGeckoProvider",
    "UpstreamError",
    "UpstreamNotFound",
    "chart_granularity_ms",
    "is_valid_coin_id",
    "ohlc_granularity_ms",
    "parse_retry_after",
    "plan_candles",
]
