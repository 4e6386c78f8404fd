"""Test helpers: hand-built candles, a strategy that replays fixed targets, and an engine-parity runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from aaiti.trading.candles import Candles
from aaiti.trading.engine import BacktestConfig, BacktestResult, EventEngine, run_vectorized
from aaiti.trading.robustness import PrecomputedTargets
from aaiti.trading.strategies.base import Strategy

DAY = 86_400_000
T0 = 1_600_000_000_000 - (1_600_000_000_000 % DAY)


def make_candles(rows: Sequence[tuple[float, float, float, float]], start: int = T0, step: int = DAY) -> Candles:
    """Candles from ``(open, high, low, close)`` rows, one day apart, volume 1."""
    arr = np.asarray(rows, dtype=np.float64)
    n = len(arr)
    return Candles.from_arrays(
        start + np.arange(n, dtype=np.int64) * step, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.ones(n)
    )


def FixedTargets(targets: Sequence[float]) -> Strategy:
    """Emits a given target sequence (the same one to both engines)."""
    return PrecomputedTargets(np.asarray(targets, dtype=np.float64))


def assert_same_result(a: BacktestResult, b: BacktestResult) -> None:
    """Bit-for-bit equality of everything the two engines report."""
    assert a.trade_log == b.trade_log, "trades differ"
    assert a.fill_log == b.fill_log, "fills differ"
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.exposure, b.exposure)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.benchmark, b.benchmark)
    assert a.fees_paid == b.fees_paid
    assert a.open_positions == b.open_positions


def run_both(
    candles: Candles | Mapping[str, Candles],
    strategies: Strategy | Mapping[str, Strategy],
    config: BacktestConfig,
) -> BacktestResult:
    """Run the event engine and (when it supports the config) the vectorised engine; assert they agree."""
    cmap = {"X": candles} if isinstance(candles, Candles) else dict(candles)
    symbols = list(cmap)
    clist = [cmap[s] for s in symbols]
    strats = [strategies[s] for s in symbols] if isinstance(strategies, Mapping) else [strategies] * len(symbols)
    bar_ms = DAY if len(clist[0]) < 2 else int(np.diff(clist[0].ts).min())
    eng = EventEngine(symbols, strats, config, bar_ms)
    eng.run(clist)
    if config.close_at_end:
        eng.close_all()
    ev = eng.result()
    if not config.risk.active:
        vec = run_vectorized(clist, [s.targets(c) for s, c in zip(strats, clist, strict=True)], config, symbols, bar_ms)
        assert_same_result(vec, ev)
    return ev
