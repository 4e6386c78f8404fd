"""Streaming indicators reproduce the vectorised ones bit for bit, and survive a JSON state round trip."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aaiti.data import load_bundled
from aaiti.trading import indicators as ind
from aaiti.trading import streaming as st
from aaiti.trading.candles import Candles

DATASETS = ["BTC-USD_1d", "ETH-USD_1d", "LTC-USD_1d", "BTC-USD_1d_coinbase", "BTC-USD_1h", "BTC-USD_1h_coinbase"]


def _load(name: str) -> Candles:
    c = load_bundled(name)
    return c.slice(0, 6000) if "1h" in name else c


# name -> (make stream, feed one bar -> tuple of outputs, vectorised outputs)
Case = tuple[
    Callable[[], Any], Callable[[Any, Candles, int], tuple[float, ...]], Callable[[Candles], tuple[np.ndarray, ...]]
]

CASES: dict[str, Case] = {
    "sma": (lambda: st.SMA(17), lambda s, c, i: (s.update(c.close[i]),), lambda c: (ind.sma(c.close, 17),)),
    "ema": (lambda: st.EMA(21), lambda s, c, i: (s.update(c.close[i]),), lambda c: (ind.ema(c.close, 21),)),
    "rsi": (lambda: st.RSI(14), lambda s, c, i: (s.update(c.close[i]),), lambda c: (ind.rsi(c.close, 14),)),
    "cmo": (
        lambda: st.RSI(9, signed=True),
        lambda s, c, i: (s.update(c.close[i]),),
        lambda c: (ind.cmo(c.close, 9),),
    ),
    "macd": (lambda: st.MACD(12, 26, 9), lambda s, c, i: s.update(c.close[i]), lambda c: ind.macd(c.close, 12, 26, 9)),
    "bbands": (
        lambda: st.BBands(20, 2.0),
        lambda s, c, i: s.update(c.close[i]),
        lambda c: ind.bbands(c.close, 20, 2.0),
    ),
    "max": (
        lambda: st.RollingMax(20),
        lambda s, c, i: (s.update(c.high[i]),),
        lambda c: (ind.rolling_max(c.high, 20),),
    ),
    "min": (lambda: st.RollingMin(10), lambda s, c, i: (s.update(c.low[i]),), lambda c: (ind.rolling_min(c.low, 10),)),
    "atr": (
        lambda: st.ATR(14),
        lambda s, c, i: (s.update(c.high[i], c.low[i], c.close[i]),),
        lambda c: (ind.atr(c.high, c.low, c.close, 14),),
    ),
    "returns_vol": (
        lambda: st.ReturnsVolatility(30),
        lambda s, c, i: (s.update(c.close[i]),),
        lambda c: (ind.returns_volatility(c.close, 30),),
    ),
}


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("case", list(CASES))
def test_stream_equals_vectorised_bit_for_bit(case: str, dataset: str) -> None:
    make, feed, vec = CASES[case]
    c = _load(dataset)
    expected = vec(c)
    s = make()
    got = np.array([feed(s, c, i) for i in range(len(c))]).T
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("case", list(CASES))
def test_stream_state_round_trip(case: str) -> None:
    make, feed, vec = CASES[case]
    c = _load("ETH-USD_1d")
    expected = np.array(vec(c)).T
    for cut in (3, 40, 500):
        s = make()
        for i in range(cut):
            feed(s, c, i)
        restored = make()
        restored.set_state(json.loads(json.dumps(s.get_state(), allow_nan=False)))
        rest = np.array([feed(restored, c, i) for i in range(cut, len(c))])
        np.testing.assert_array_equal(rest, expected[cut:])
