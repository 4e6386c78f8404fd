"""Tickers (``BTC``) ↔ CoinGecko coin ids (``bitcoin``).

Many tokens share a ticker on CoinGecko, so the well-known ones are fixed here and only unknown tickers go to
``/search``, where the exact-symbol match with the best market-cap rank wins. Resolutions (including "no such coin")
are cached so a repeated unknown ticker does not spend the rate-limit budget.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aaiti.core.clock import Clock
from aaiti.core.errors import Invalid
from aaiti.market.provider import SymbolInfo

_TICKER_RE = re.compile(r"^[A-Z0-9]{1,15}$")
_COIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_QUOTE_SEPARATORS = ("-", "/", "_")

DEFAULT_SYMBOLS: tuple[SymbolInfo, ...] = (
    SymbolInfo("BTC", "bitcoin", "Bitcoin"),
    SymbolInfo("ETH", "ethereum", "Ethereum"),
    SymbolInfo("LTC", "litecoin", "Litecoin"),
    SymbolInfo("XRP", "ripple", "XRP"),
    SymbolInfo("ADA", "cardano", "Cardano"),
    SymbolInfo("SOL", "solana", "Solana"),
    SymbolInfo("DOGE", "dogecoin", "Dogecoin"),
    SymbolInfo("DOT", "polkadot", "Polkadot"),
    SymbolInfo("BNB", "binancecoin", "BNB"),
    SymbolInfo("USDT", "tether", "Tether"),
    SymbolInfo("USDC", "usd-coin", "USDC"),
    SymbolInfo("AVAX", "avalanche-2", "Avalanche"),
    SymbolInfo("LINK", "chainlink", "Chainlink"),
    SymbolInfo("TRX", "tron", "TRON"),
    SymbolInfo("BCH", "bitcoin-cash", "Bitcoin Cash"),
    SymbolInfo("XLM", "stellar", "Stellar"),
    SymbolInfo("ATOM", "cosmos", "Cosmos Hub"),
    SymbolInfo("UNI", "uniswap", "Uniswap"),
    SymbolInfo("ETC", "ethereum-classic", "Ethereum Classic"),
    SymbolInfo("XMR", "monero", "Monero"),
    SymbolInfo("ALGO", "algorand", "Algorand"),
    SymbolInfo("NEAR", "near", "NEAR Protocol"),
    SymbolInfo("SHIB", "shiba-inu", "Shiba Inu"),
)


def normalize_symbol(symbol: str, quote: str = "usd") -> str:
    """``"btc"``, ``"BTC-USD"``, ``"BTC/usd"`` → ``"BTC"``.

    A pair whose quote is not ``quote`` is refused (this provider prices in one currency only).
    Raises :class:`Invalid` for anything that is not a plain ticker.
    """
    text = symbol.strip().upper()
    for sep in _QUOTE_SEPARATORS:
        if sep in text:
            base, _, pair_quote = text.partition(sep)
            if pair_quote != quote.upper():
                raise Invalid(f"symbol {symbol!r}: only {quote.upper()} prices are available")
            text = base
            break
    if not _TICKER_RE.fullmatch(text):
        raise Invalid(f"symbol {symbol!r} is not a ticker (1-15 letters or digits)")
    return text


def is_valid_coin_id(coin_id: str) -> bool:
    """CoinGecko ids are lower-case slugs; anything else must never reach a URL path."""
    return bool(_COIN_ID_RE.fullmatch(coin_id))


def best_match(ticker: str, candidates: Iterable[SymbolInfo]) -> SymbolInfo | None:
    """The exact-ticker match with the best (lowest) market-cap rank; unranked matches come last."""
    exact = [c for c in candidates if c.symbol.upper() == ticker and is_valid_coin_id(c.coin_id)]
    if not exact:
        return None
    return min(exact, key=lambda c: (c.market_cap_rank is None, c.market_cap_rank or 0))


SearchFn = Callable[[str], Awaitable[list[SymbolInfo]]]


@dataclass(slots=True)
class _Learned:
    info: SymbolInfo | None
    expires_at: float


class SymbolResolver:
    """Maps tickers to coin ids: fixed table first, then ``search`` for unknown tickers (cached, single-flight).

    ``search`` is the provider's upstream search; its failures propagate (``Unavailable``), so an outage never turns
    into "unknown symbol".
    """

    def __init__(
        self,
        search: SearchFn,
        clock: Clock,
        *,
        known: Iterable[SymbolInfo] = DEFAULT_SYMBOLS,
        ttl_s: float = 3600.0,
        negative_ttl_s: float = 600.0,
    ) -> None:
        self._search = search
        self._clock = clock
        self._known = {s.symbol: s for s in known}
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._learned: dict[str, _Learned] = {}
        self._inflight: dict[str, asyncio.Task[SymbolInfo | None]] = {}

    def known(self) -> list[SymbolInfo]:
        """The fixed table plus tickers learned from search that are still cached."""
        now = self._clock.monotonic()
        learned = [e.info for e in self._learned.values() if e.info is not None and e.expires_at > now]
        merged = {s.symbol: s for s in [*self._known.values(), *learned]}
        return sorted(merged.values(), key=lambda s: s.symbol)

    def cached(self, ticker: str) -> SymbolInfo | None:
        """Resolution without I/O: fixed table or an unexpired learned entry."""
        if ticker in self._known:
            return self._known[ticker]
        entry = self._learned.get(ticker)
        if entry is not None and entry.expires_at > self._clock.monotonic():
            return entry.info
        return None

    async def resolve(self, symbol: str, quote: str = "usd") -> SymbolInfo:
        """Ticker → :class:`SymbolInfo`. Raises ``Invalid`` for a malformed or unknown ticker."""
        ticker = normalize_symbol(symbol, quote)
        if ticker in self._known:
            return self._known[ticker]
        entry = self._learned.get(ticker)
        if entry is None or entry.expires_at <= self._clock.monotonic():
            task = self._inflight.get(ticker)
            if task is None:
                task = asyncio.ensure_future(self._lookup(ticker))
                self._inflight[ticker] = task
                task.add_done_callback(functools.partial(self._end_lookup, ticker))
            info = await asyncio.shield(task)
        else:
            info = entry.info
        if info is None:
            raise Invalid(f"unknown symbol {ticker!r}")
        return info

    def _end_lookup(self, ticker: str, _task: asyncio.Task[SymbolInfo | None]) -> None:
        self._inflight.pop(ticker, None)

    async def _lookup(self, ticker: str) -> SymbolInfo | None:
        found = best_match(ticker, await self._search(ticker))
        ttl = self._ttl_s if found is not None else self._negative_ttl_s
        info = SymbolInfo(ticker, found.coin_id, found.name, found.market_cap_rank) if found else None
        self._learned[ticker] = _Learned(info, self._clock.monotonic() + ttl)
        return info
