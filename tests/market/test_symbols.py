"""Ticker ↔ coin id resolution."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from aaiti.core.clock import FrozenClock
from aaiti.core.errors import Invalid, Unavailable
from aaiti.market.provider import SymbolInfo
from aaiti.market.symbols import SymbolResolver, best_match, normalize_symbol


@pytest.mark.parametrize(
    ("raw", "expected"), [("btc", "BTC"), (" BTC ", "BTC"), ("BTC-USD", "BTC"), ("eth/usd", "ETH"), ("sol_USD", "SOL")]
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "BTC-EUR", "B TC", "<script>", "A" * 16, "../x", "BTC-USD-USD"])
def test_normalize_refuses(raw: str) -> None:
    with pytest.raises(Invalid):
        normalize_symbol(raw)


def test_best_match_prefers_exact_symbol_with_best_rank() -> None:
    found = [
        SymbolInfo("PEPE", "pepe-scam", "Pepe Scam", None),
        SymbolInfo("PEPE2", "pepe-2", "Pepe 2.0", 400),
        SymbolInfo("PEPE", "pepe", "Pepe", 30),
        SymbolInfo("PEPE", "Bad Id!", "Broken", 1),
    ]
    match = best_match("PEPE", found)
    assert match is not None
    assert match.coin_id == "pepe"
    assert best_match("NOPE", found) is None


async def test_resolver_uses_table_then_search_once_per_ticker() -> None:
    clock = FrozenClock(datetime(2021, 7, 17, tzinfo=UTC))
    calls: list[str] = []

    async def search(q: str) -> list[SymbolInfo]:
        calls.append(q)
        await asyncio.sleep(0.01)
        return [SymbolInfo("PEPE", "pepe", "Pepe", 30)] if q == "PEPE" else []

    resolver = SymbolResolver(search, clock, negative_ttl_s=60)
    assert (await resolver.resolve("btc")).coin_id == "bitcoin"
    assert calls == []
    infos = await asyncio.gather(*(resolver.resolve("pepe") for _ in range(20)))
    assert {i.coin_id for i in infos} == {"pepe"}
    assert calls == ["PEPE"]  # single flight
    for _ in range(3):
        with pytest.raises(Invalid, match="unknown symbol"):
            await resolver.resolve("ZZZ")
    assert calls == ["PEPE", "ZZZ"]  # negative answer cached
    clock.advance(61)
    with pytest.raises(Invalid):
        await resolver.resolve("ZZZ")
    assert calls == ["PEPE", "ZZZ", "ZZZ"]
    assert "PEPE" in {s.symbol for s in resolver.known()}


async def test_resolver_outage_is_not_unknown_symbol() -> None:
    async def search(q: str) -> list[SymbolInfo]:
        raise Unavailable("down")

    resolver = SymbolResolver(search, FrozenClock(datetime(2021, 7, 17, tzinfo=UTC)))
    with pytest.raises(Unavailable):
        await resolver.resolve("PEPE")
    assert resolver.cached("PEPE") is None
