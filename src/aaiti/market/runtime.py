"""The market domain's background services, started by the app's lifespan (``DOMAIN_RUNTIMES``).

Start-up: build the providers the source mode allows, the :class:`~aaiti.market.feed.SourceSelector`, the
:class:`~aaiti.market.feed.PriceFeed` and its :class:`~aaiti.market.feed.CandleBus`; register the ``prices`` and
``market`` socket rooms and the ``market`` readiness check; then run, as background tasks, the poller, the
``auto``-mode probe and (first start) the load of the bundled history. On replay the first poll happens before the
app serves requests, so prices are there from the first request.

Settings in ``AAITI_ENV=test`` (the test suite): unless set explicitly, the source is ``replay`` and the bundled
history is not loaded, so a test app never reaches the network and starts in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from pydantic import SecretStr, ValidationError

from aaiti.core.clock import Clock
from aaiti.core.config import ConfigError, MarketSettings, Settings
from aaiti.core.context import CoreComponents
from aaiti.core.db.session import Database
from aaiti.core.errors import AppError
from aaiti.core.observability.health import CheckResult
from aaiti.core.principal import Principal
from aaiti.core.realtime.server import SocketGateway
from aaiti.data import load_bundled
from aaiti.market import repository as repo
from aaiti.market.coingecko import PUBLIC_BASE_URL, CoinGeckoConfig, CoinGeckoProvider
from aaiti.market.feed import SNAPSHOT_ROOM, CandleBus, PriceFeed, SourceSelector
from aaiti.market.provider import SymbolInfo
from aaiti.market.replay import BUNDLED_REPLAY, ReplayProvider, ReplaySource
from aaiti.market.service import BundledLoad, load_bundled_history
from aaiti.market.symbols import DEFAULT_SYMBOLS
from aaiti.trading.candles import TIMEFRAME_MS, Candles

log = structlog.get_logger(__name__)

#: While ``auto`` serves replay, CoinGecko is pinged this often (one call of the budget each time).
AUTO_PROBE_S: Final = 60.0
#: CoinGecko's public API caches /simple/price for about 60 s, so a fresh quote can be that old already.
UPSTREAM_CACHE_S: Final = 60.0
#: At most this many candles of a stored (non-bundled) series are replayed.
REPLAY_MAX_CANDLES: Final = 50_000
HOUR_S: Final = 3600.0


@dataclass(slots=True)
class MarketRuntime:
    """What the market routes and other domains (bots) use at run time; ``app.state.market``."""

    settings: MarketSettings
    sources: SourceSelector
    feed: PriceFeed
    bus: CandleBus
    bundled: BundledLoad
    clock: Clock
    stale_after_s: dict[str, float]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def effective_settings(settings: Settings) -> MarketSettings:
    """``settings.market`` with the hermetic test defaults (see the module docstring)."""
    market = settings.market
    if settings.env != "test":
        return market
    updates: dict[str, Any] = {}
    if "source" not in market.model_fields_set:
        updates["source"] = "replay"
    if "load_bundled" not in market.model_fields_set:
        updates["load_bundled"] = False
    return market.model_copy(update=updates)


def stale_after(market: MarketSettings) -> dict[str, float]:
    """A price is stale once older than two poll intervals (RELIABILITY §5.5); for CoinGecko plus its own
    server-side cache age, since a price fresh from its API can already be that old."""
    return {"replay": 2 * market.poll_interval_s, "coingecko": 2 * market.poll_interval_s + UPSTREAM_CACHE_S}


def coingecko_config(market: MarketSettings) -> CoinGeckoConfig:
    """Map the application settings onto the client's. The default public URL is dropped so a pro key goes to the
    pro host; any other URL (a proxy, a local fake) is used as given."""
    base = market.coingecko_base_url.rstrip("/")
    try:
        return CoinGeckoConfig(
            key_kind=market.coingecko_key_kind,
            api_key=market.coingecko_api_key,
            base_url=None if base == PUBLIC_BASE_URL else base,
            budget_calls=market.calls_per_minute,
            budget_period_s=60.0,
            price_ttl_s=max(0.01, 0.9 * market.poll_interval_s),
            stale_after_s=stale_after(market)["coingecko"],
            failure_backoff_s=min(5.0, market.poll_interval_s),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"AAITI_MARKET__COINGECKO_*: {first['msg']}") from None


async def _stored_replay_series(db: Database) -> dict[str, repo.SeriesInfo]:
    """Per symbol without bundled replay data, the finest stored series with enough rows to play."""
    best: dict[str, repo.SeriesInfo] = {}
    async with db.read() as session:
        for info in await repo.series_summary(session):
            if info.symbol in BUNDLED_REPLAY or info.count < 2 or info.timeframe not in TIMEFRAME_MS:
                continue
            current = best.get(info.symbol)
            key = (TIMEFRAME_MS[info.timeframe], -info.count)
            if current is None or key < (TIMEFRAME_MS[current.timeframe], -current.count):
                best[info.symbol] = info
    return best


def replay_source(db: Database, stored: dict[str, repo.SeriesInfo]) -> ReplaySource:
    """Bundled symbols replay the packaged files (identical to the stored ``bundled:*`` rows, available before the
    first-start load finishes); any other symbol replays its finest stored series."""

    async def source(symbol: str) -> Candles | None:
        if symbol in BUNDLED_REPLAY:
            return await asyncio.to_thread(load_bundled, BUNDLED_REPLAY[symbol])
        info = stored.get(symbol)
        if info is None:
            return None
        async with db.read() as session:
            got = await repo.fetch_series(
                session,
                source=info.source,
                symbol=symbol,
                timeframe=info.timeframe,
                limit=REPLAY_MAX_CANDLES,
                latest=True,
            )
        return got.candles

    return source


def _room_reader(gateway: SocketGateway) -> Callable[[], list[str]]:
    """Tickers of ``prices:*`` rooms that have members right now (read from the Socket.IO manager, no I/O)."""

    def read() -> list[str]:
        rooms = gateway.sio.manager.rooms.get("/", {})
        return [
            name.partition(":")[2]
            for name, members in list(rooms.items())
            if isinstance(name, str) and name.startswith("prices:") and members
        ]

    return read


async def _stored_api_key(db: Database) -> str | None:
    """The key an administrator stored through /api/settings (``coingecko.api_key``), if any."""
    row = await db.fast.fetch_one("SELECT value FROM settings WHERE key = :k", {"k": "coingecko.api_key"})
    value = json.loads(row[0]) if row else None
    return value if isinstance(value, str) and value else None


async def build_runtime(core: CoreComponents, gateway: SocketGateway | None) -> MarketRuntime:
    market = effective_settings(core.settings)
    if market.coingecko_api_key is None and market.source in ("coingecko", "auto"):
        stored_key = await _stored_api_key(core.db)
        if stored_key is not None:
            kind = market.coingecko_key_kind if market.coingecko_key_kind != "none" else "demo"
            market = market.model_copy(update={"coingecko_api_key": SecretStr(stored_key), "coingecko_key_kind": kind})
    clock = core.clock
    coingecko = (
        CoinGeckoProvider(coingecko_config(market), clock=clock) if market.source in ("coingecko", "auto") else None
    )
    replay = None
    replay_symbols: set[str] = set()
    if market.source in ("replay", "auto"):
        stored = await _stored_replay_series(core.db)
        names = {s.symbol: s for s in DEFAULT_SYMBOLS}
        infos = [names[t] for t in BUNDLED_REPLAY] + [names.get(t, SymbolInfo(t, t.lower(), t)) for t in sorted(stored)]
        replay_symbols = {s.symbol for s in infos}
        replay = ReplayProvider(
            replay_source(core.db, stored),
            clock,
            symbols=infos,
            speed=HOUR_S / market.replay_bar_seconds,
            loop=True,
        )
    sources = SourceSelector(market.source, coingecko=coingecko, replay=replay, replay_symbols=replay_symbols)
    bus = CandleBus()
    feed = PriceFeed(
        sources,
        core.publisher,
        clock,
        interval_s=market.poll_interval_s,
        stale_after_s=stale_after(market),
        base_symbols=market.symbols,
        room_symbols=_room_reader(gateway) if gateway is not None else (lambda: ()),
        bus=bus,
    )
    state = "pending" if market.load_bundled else "disabled"
    return MarketRuntime(market, sources, feed, bus, BundledLoad(state=state), clock, stale_after(market))


def _ready_check(runtime: MarketRuntime) -> Callable[[], Awaitable[CheckResult]]:
    async def check() -> CheckResult:
        feed, source = runtime.feed, runtime.sources.source
        fresh = feed.fresh()
        age = feed.data_age_s()
        age_text = "no price yet" if age is None else f"data age {age:.0f} s"
        detail = f"{source}: {'serving fresh prices' if fresh else 'no fresh price'} ({age_text})"
        return CheckResult(
            fresh,
            detail,
            {"source": source, "mode": runtime.settings.source, "data_age_s": age, "stale": not fresh},
        )

    return check


def _register_rooms(gateway: SocketGateway, runtime: MarketRuntime) -> None:
    async def prices(_principal: Principal, ident: str) -> bool:
        # Only canonical, priceable tickers: a room the feed would never emit to is refused, not silently empty.
        try:
            ticker = await runtime.sources.validate(ident)
        except AppError:
            return False
        if ticker != ident:
            return False
        runtime.feed.wake()
        return True

    async def snapshot(_principal: Principal, ident: str) -> bool:
        return f"market:{ident}" == SNAPSHOT_ROOM

    gateway.register_room("prices", prices)
    gateway.register_room("market", snapshot)


async def _guard(name: str, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("market_task_failed", task=name)


async def _probe_forever(runtime: MarketRuntime) -> None:
    while True:
        try:
            await runtime.sources.probe(runtime.clock.now())
        except Exception:
            log.exception("market_probe_failed")
        on_replay = runtime.sources.active is runtime.sources.replay
        await asyncio.sleep(AUTO_PROBE_S if on_replay else runtime.settings.poll_interval_s)


async def _load_bundled(core: CoreComponents, runtime: MarketRuntime) -> None:
    try:
        await load_bundled_history(core.db, core.clock, runtime.bundled)
    except Exception as exc:
        runtime.bundled.state = "failed"
        runtime.bundled.error = f"{type(exc).__name__}: {exc}"[:300]
        raise


@contextlib.asynccontextmanager
async def market_runtime(core: CoreComponents, gateway: SocketGateway, app_state: Any) -> AsyncIterator[None]:
    """``DOMAIN_RUNTIMES`` entry: start the market services, expose them as ``app_state.market``, stop them."""
    runtime = await build_runtime(core, gateway)
    _register_rooms(gateway, runtime)
    if runtime.sources.active is runtime.sources.replay:
        await runtime.feed.poll_once()  # replay answers at once: prices are there from the first request
    tasks = runtime.tasks
    tasks.append(asyncio.create_task(_guard("feed", runtime.feed.run()), name="market-feed"))
    if runtime.settings.source == "auto":
        tasks.append(asyncio.create_task(_guard("probe", _probe_forever(runtime)), name="market-probe"))
    if runtime.settings.load_bundled:
        tasks.append(asyncio.create_task(_guard("bundled", _load_bundled(core, runtime)), name="market-bundled"))
    core.ready_checks["market"] = _ready_check(runtime)
    app_state.market = runtime
    log.info(
        "market_started",
        mode=runtime.settings.source,
        source=runtime.sources.source,
        interval_s=runtime.settings.poll_interval_s,
        load_bundled=runtime.settings.load_bundled,
    )
    try:
        yield
    finally:
        core.ready_checks.pop("market", None)
        app_state.market = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runtime.bus.close()
        for provider in (runtime.sources.coingecko, runtime.sources.replay):
            if provider is not None:
                await provider.aclose()
