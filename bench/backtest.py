"""Backtest engine speed and agreement against vectorbt and backtesting.py, measured in the same run.

Workload: an SMA(10)/SMA(30) crossover (long while the fast average is above the slow one, flat otherwise),
0.1 % fees per side, all-in sizing, on 1,000,000 hourly bars.

Data: the bundled Bitstamp BTC-USD hourly candles (33,259 real bars) turned into a continuous 1M-bar path. Each
bar is described relative to the previous close (log of open/high/low/close over the previous close); the
close-to-close log returns are demeaned (so that 30 repetitions do not compound BTC's 2018-2022 trend into
absurd prices), the sequence is repeated until there are 1M bars and prices are rebuilt by chaining the returns
from 10,000. Every bar therefore has a real bar's shape and a real return; only the level is synthetic.

Engines:

- ``ours vectorized``: :func:`aaiti.trading.engine.backtest` with ``engine="vectorized"`` (targets, fills,
  stops, mark-to-market equity and the result object, all included in the time);
- ``ours event``: the same through the bar-by-bar :class:`~aaiti.trading.engine.EventEngine` (the paper-bot code
  path);
- ``vectorbt``: ``vbt.MA.run`` + ``Portfolio.from_signals`` (its numba compilation is done by a warm-up call and
  reported separately);
- ``backtesting.py``: ``Backtest.run`` with the strategy's ``next`` deciding on every bar.

Fill conventions: we decide on a bar's close and fill at the next bar's open. backtesting.py does the same by
default. vectorbt fills at the signal bar's close by default, so we pass it the signals shifted by one bar and
``price=open``. backtesting.py only trades whole units, so it gets 1e16 of cash (rounding then costs < 1e-7 of
equity) and final equities are compared as multiples of the initial cash. (At 0.1 % a side, 20,000 round trips
of this crossover lose almost everything: the final multiple is about 5e-5. That is the workload, not a bug.)

Two rule sets are timed: ``fees`` (the agreement check) and ``full`` -- fees plus 2 bps slippage, a 5 %
stop-loss and a 10 % take-profit checked against each bar's high and low (gaps filled at the open). vectorbt runs
the same ``full`` rules (``sl_stop``, ``tp_stop``, ``slippage`` with open/high/low). Ours is also timed with a 3 %
trailing stop on top (``full+trail``), which vectorbt cannot combine with a fixed stop-loss.

Peers: vectorbt 1.x needs pandas >= 3, which conflicts with statsforecast's pandas < 3 in the application's
environment, so install the peers into a separate venv::

    python3.11 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install numpy pydantic vectorbt backtesting
    PYTHONPATH=src /tmp/bench-venv/bin/python bench/backtest.py

A peer that cannot be imported is reported and skipped. Goals (issue 4): vectorised >= vectorbt with the full
rules, event engine >= 2x backtesting.py, peak memory of the vectorised run < 4x the input arrays.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aaiti.data import load_bundled
from aaiti.trading.candles import Candles
from aaiti.trading.engine import BacktestConfig, BacktestResult, backtest
from aaiti.trading.strategies import create_strategy

FEES = {"fees": {"taker_bps": 10.0, "maker_bps": 10.0}}
# backtesting.py buys whole units only; with this much cash the rounding stays below 1e-7 of equity even after
# the strategy has lost almost everything to fees.
CASH_BT = 1e16
FULL = {**FEES, "slippage": {"bps": 2.0}, "stops": {"stop_loss": 0.05, "take_profit": 0.10}}
FULL_TRAIL = {
    **FEES,
    "slippage": {"bps": 2.0},
    "stops": {"stop_loss": 0.05, "take_profit": 0.10, "trailing_stop": 0.03},
}


def build_bars(n: int) -> Candles:
    src = load_bundled("BTC-USD_1h")
    lc = np.log(src.close)
    r = np.diff(lc)
    r -= r.mean()
    ro = np.log(src.open[1:]) - lc[:-1]
    rh = np.log(src.high[1:]) - lc[:-1]
    rl = np.log(src.low[1:]) - lc[:-1]
    reps = n // len(r) + 1
    r_t = np.tile(r, reps)[:n]
    prev = math.log(10_000.0) + np.concatenate(([0.0], np.cumsum(r_t)[:-1]))
    close = np.exp(prev + r_t)
    open_ = np.exp(prev + np.tile(ro, reps)[:n])
    high = np.maximum(np.exp(prev + np.tile(rh, reps)[:n]), np.maximum(open_, close))
    low = np.minimum(np.exp(prev + np.tile(rl, reps)[:n]), np.minimum(open_, close))
    ts = 1_500_000_000_000 + np.arange(n, dtype=np.int64) * 3_600_000
    return Candles.from_arrays(ts, open_, high, low, close, np.tile(src.volume[1:], reps)[:n])


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best = math.inf
    out: Any = None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def ours(c: Candles, rules: dict[str, Any], engine: str) -> BacktestResult:
    strategy = create_strategy("sma_crossover", {"fast": 10, "slow": 30})
    return backtest(c, strategy, BacktestConfig.model_validate(rules), engine=engine)  # type: ignore[arg-type]


def peak_memory(c: Candles) -> int:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = ours(c, FULL_TRAIL, "vectorized")
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del result
    return peak


def run_vectorbt(c: Candles, full: bool, repeats: int) -> dict[str, Any]:
    import pandas as pd

    vbt = importlib.import_module("vectorbt")
    idx = pd.date_range("2017-07-14", periods=len(c), freq="h")
    close = pd.Series(c.close, index=idx)
    kwargs: dict[str, Any] = {
        "price": pd.Series(c.open, index=idx),
        "fees": 0.001,
        "init_cash": 10_000.0,
        "freq": "1h",
    }
    if full:
        kwargs.update(
            open=pd.Series(c.open, index=idx),
            high=pd.Series(c.high, index=idx),
            low=pd.Series(c.low, index=idx),
            slippage=0.0002,
            sl_stop=0.05,
            tp_stop=0.10,
            # Stop levels relative to the entry fill price, as ours (vectorbt's default is the entry bar's close).
            stop_entry_price="fillprice",
        )

    def go() -> tuple[float, int]:
        fast = vbt.MA.run(close, 10)
        slow = vbt.MA.run(close, 30)
        above = fast.ma_above(slow)
        # Decide on the close, act at the next open: shift the signals one bar. With stops, enter on the
        # crossing only (vectorbt would otherwise re-enter on the bar after a stop while the fast average is
        # still above; our engine waits for the target to change).
        entries = (fast.ma_crossed_above(slow) if full else above).shift(1, fill_value=False)
        exits = (~above).shift(1, fill_value=False)
        pf = vbt.Portfolio.from_signals(close, entries, exits, **kwargs)
        return float(pf.final_value()), int(pf.trades.count())

    t = time.perf_counter()
    go()
    compile_s = time.perf_counter() - t
    secs, (final, trades) = best_of(go, repeats)
    return {"seconds": secs, "multiple": final / 10_000.0, "trades": trades, "compile_s": compile_s}


def run_backtesting_py(c: Candles) -> dict[str, Any]:
    import pandas as pd

    bt_mod = importlib.import_module("backtesting")
    idx = pd.date_range("2017-07-14", periods=len(c), freq="h")
    df = pd.DataFrame({"Open": c.open, "High": c.high, "Low": c.low, "Close": c.close, "Volume": c.volume}, index=idx)

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(bt_mod.Strategy):  # type: ignore[misc,name-defined]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            if self.fast[-1] > self.slow[-1]:
                if not self.position:
                    self.buy()
            elif self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = bt_mod.Backtest(df, SmaCross, cash=CASH_BT, commission=0.001, finalize_trades=False)
        t = time.perf_counter()
        stats = bt.run()
        secs = time.perf_counter() - t
    return {"seconds": secs, "multiple": float(stats["Equity Final [$]"]) / CASH_BT, "trades": int(stats["# Trades"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.bars
    c = build_bars(n)
    input_bytes = sum(a.nbytes for a in (c.ts, c.open, c.high, c.low, c.close, c.volume))
    print(f"{n:,} bars, input arrays {input_bytes / 1e6:.0f} MB, Python {sys.version.split()[0]}")

    rows: list[tuple[str, str, float, float | None, int | None]] = []
    results: dict[str, dict[str, Any]] = {}
    for label, rules in (("fees", FEES), ("full", FULL), ("full+trail", FULL_TRAIL)):
        secs, res = best_of(lambda rules=rules: ours(c, rules, "vectorized"), args.repeats)
        results[f"vec {label}"] = {"seconds": secs, "multiple": res.final_equity / res.initial_cash}
        rows.append(("ours vectorized", label, secs, res.final_equity / res.initial_cash, len(res.trade_log)))
    for label, rules in (("fees", FEES), ("full", FULL)):
        secs, res = best_of(lambda rules=rules: ours(c, rules, "event"), 2)
        results[f"event {label}"] = {"seconds": secs, "multiple": res.final_equity / res.initial_cash}
        rows.append(("ours event", label, secs, res.final_equity / res.initial_cash, len(res.trade_log)))

    peers: dict[str, str] = {}
    for label, full in (("fees", False), ("full", True)):
        try:
            vb = run_vectorbt(c, full, args.repeats)
        except ImportError as exc:
            peers["vectorbt"] = f"not importable ({exc}); skipped"
            break
        results[f"vectorbt {label}"] = vb
        rows.append(("vectorbt", label, vb["seconds"], vb["multiple"], vb["trades"]))
        peers.setdefault("vectorbt", f"numba compilation on first call: {vb['compile_s']:.1f} s (not counted)")
    try:
        bp = run_backtesting_py(c)
        results["backtesting.py fees"] = bp
        rows.append(("backtesting.py", "fees", bp["seconds"], bp["multiple"], bp["trades"]))
    except ImportError as exc:
        peers["backtesting.py"] = f"not importable ({exc}); skipped"

    print(f"\n{'engine':<16} {'rules':<11} {'seconds':>8} {'bars/s':>12} {'final/initial':>18} {'trades':>7}")
    for name, label, secs, mult, trades in rows:
        print(f"{name:<16} {label:<11} {secs:8.3f} {n / secs:12,.0f} {mult:18.10e} {trades:7d}")
    for peer, note in peers.items():
        print(f"note: {peer}: {note}")

    ok = True
    print("\nagreement of final equity (fees rules, as a multiple of the initial cash):")
    ref = results["vec fees"]["multiple"]
    for key in ("event fees", "vectorbt fees", "backtesting.py fees"):
        if key in results:
            other = results[key]["multiple"]
            rel = abs(other / ref - 1.0)
            tol = 1e-6 if key.startswith("backtesting") else 1e-9
            status = "ok" if rel <= tol else "DIFFERENT"
            ok &= rel <= tol
            print(f"  {key:<22} {other:.10e}  relative difference {rel:.2e} (tolerance {tol:g}) {status}")
    print(
        "  conventions: all decide on the close and fill at the next open; backtesting.py trades whole units "
        "(1e16 cash).\n  The full-rule runs are timed, not compared: both check stops on every bar's high/low and "
        "fill gaps at\n  the open, but ours also checks the entry bar itself, and vectorbt stops trading once the "
        "equity\n  has decayed to a few cents (hence its lower trade count)."
    )

    print("\nratios:")
    if "vectorbt full" in results:
        for lbl in ("fees", "full"):
            ratio = results[f"vectorbt {lbl}"]["seconds"] / results[f"vec {lbl}"]["seconds"]
            print(f"  ours vectorized / vectorbt speed, {lbl} rules: {ratio:.2f}x (goal >= 1x, stretch 3x)")
        ratio = results["vectorbt full"]["seconds"] / results["vec full+trail"]["seconds"]
        print(f"  ours vectorized with a trailing stop too / vectorbt full: {ratio:.2f}x")
    if "backtesting.py fees" in results:
        for lbl in ("fees", "full"):
            ratio = results["backtesting.py fees"]["seconds"] / results[f"event {lbl}"]["seconds"]
            print(f"  ours event ({lbl} rules) / backtesting.py (fees) speed: {ratio:.2f}x (goal >= 2x)")
    peak = peak_memory(c)
    print(
        f"  peak memory of the vectorised run (full+trail, tracemalloc): {peak / 1e6:.0f} MB = "
        f"{peak / input_bytes:.2f}x the input arrays (goal < 4x)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
