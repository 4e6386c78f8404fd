"""Sweeps, walk-forward, Monte Carlo and fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from aaiti.data import load_bundled
from aaiti.trading.candles import Candles
from aaiti.trading.engine import BacktestConfig, backtest
from aaiti.trading.fingerprint import canonical_json, fingerprint, hash_candles
from aaiti.trading.metrics import compute_metrics
from aaiti.trading.robustness import (
    expand_grid,
    monte_carlo_returns,
    monte_carlo_trades,
    run_sweep,
    sort_rows,
    sweep_one,
    walk_forward,
)
from aaiti.trading.strategies import create_strategy

BTC = load_bundled("BTC-USD_1d")
CONFIG = BacktestConfig.model_validate({"fees": {"taker_bps": 10}, "stops": {"stop_loss": 0.1}})


def test_expand_grid() -> None:
    rows = expand_grid({"fast": [5, 10], "slow": [20, 30, 40]}, {"short": True})
    assert len(rows) == 6
    assert rows[0] == {"short": True, "fast": 5, "slow": 20}
    assert rows[-1] == {"short": True, "fast": 10, "slow": 40}
    with pytest.raises(ValueError, match="at most"):
        expand_grid({"a": list(range(200)), "b": list(range(200))})
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"a": []})


def test_sweep_rows_match_single_backtests_and_sort() -> None:
    rows = run_sweep(BTC, "sma_crossover", {"fast": [5, 10, 40], "slow": [20, 30]}, CONFIG)
    assert len(rows) == 6
    bad = [r for r in rows if r.error]
    assert [r.params for r in bad] == [{"fast": 40, "slow": 20}, {"fast": 40, "slow": 30}]
    assert all("fast must be smaller" in (r.error or "") for r in bad)
    good = [r for r in rows if r.metrics is not None]
    direct = compute_metrics(backtest(BTC, create_strategy("sma_crossover", {"fast": 5, "slow": 20}), CONFIG))
    assert good[0].value("sharpe") == direct["sharpe"].value
    ranked = sort_rows(rows, "sharpe")
    sharpes = [r.value("sharpe") for r in ranked]
    defined = [s for s in sharpes if s is not None]
    assert defined == sorted(defined, reverse=True)
    assert ranked[-1].error is not None and ranked[-2].error is not None
    assert sort_rows(rows, "max_drawdown", descending=False)[0].value("max_drawdown") == min(
        r.value("max_drawdown") or 0.0 for r in good
    )
    assert sweep_one(BTC, "sma_crossover", {"fast": 5, "slow": 20}, CONFIG).to_dict()["params"] == {
        "fast": 5,
        "slow": 20,
    }


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward(anchored: bool) -> None:
    grid = {"fast": [5, 10, 20], "slow": [30, 50]}
    wf = walk_forward(BTC, "sma_crossover", grid, CONFIG, train_bars=500, test_bars=250, anchored=anchored)
    assert len(wf.windows) == (len(BTC) - 500 + 249) // 250
    for k, w in enumerate(wf.windows):
        assert w.test_start == 500 + 250 * k
        assert w.train_end == w.test_start
        assert w.train_start == (0 if anchored else w.test_start - 500)
        # The chosen parameters are the in-sample best of the grid.
        best = max(
            (
                compute_metrics(
                    backtest(
                        BTC.slice(w.train_start, w.train_end),
                        _prefix_targets_strategy(p, w.train_start, w.train_end),
                        CONFIG,
                    )
                )["sharpe"].value
                or -np.inf
            )
            for p in expand_grid(grid)
        )
        assert w.in_sample["sharpe"].value == pytest.approx(best)
    assert wf.ts[0] == BTC.ts[500] and wf.ts[-1] == BTC.ts[-1]
    assert len(wf.equity) == len(BTC) - 500
    assert np.all(np.diff(wf.ts) > 0)
    # Stitching: each window's growth multiplies onto the previous level.
    product = np.prod([1.0 + (w.out_of_sample["total_return"].value or 0.0) for w in wf.windows])
    assert wf.equity[-1] == pytest.approx(CONFIG.initial_cash * product, rel=1e-9)
    assert wf.metrics["total_return"].value == pytest.approx(product - 1.0, rel=1e-9)


def _prefix_targets_strategy(params: dict[str, int], start: int, stop: int) -> object:
    """The reference computation for one window: targets on the full prefix, replayed on the window."""
    from aaiti.trading.robustness import PrecomputedTargets

    full = create_strategy("sma_crossover", params).targets(BTC.slice(0, stop))
    return PrecomputedTargets(full[start:stop])


def test_walk_forward_rejects_bad_windows() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        walk_forward(BTC, "sma_crossover", {"fast": [5]}, CONFIG, train_bars=1800, test_bars=100)
    with pytest.raises(ValueError, match="no valid parameter set"):
        walk_forward(BTC, "sma_crossover", {"fast": [50], "slow": [10]}, CONFIG, train_bars=500, test_bars=100)


def test_monte_carlo_is_seeded_and_sane() -> None:
    result = backtest(BTC, create_strategy("ema_crossover", {"fast": 10, "slow": 30}), CONFIG)
    a = monte_carlo_returns(result, n_sims=300, seed=7)
    b = monte_carlo_returns(result, n_sims=300, seed=7)
    c = monte_carlo_returns(result, n_sims=300, seed=8)
    assert a.to_dict() == b.to_dict()
    assert a.bands != c.bands
    for name in ("total_return", "max_drawdown", "sharpe"):
        band = [a.bands[name][k] for k in ("p5", "p25", "p50", "p75", "p95")]
        assert all(v is not None for v in band)
        assert band == sorted(band)  # type: ignore[type-var]
    assert 0.0 <= a.prob_loss <= 1.0
    assert a.actual["total_return"] == pytest.approx(result.final_equity / result.initial_cash - 1.0, rel=1e-9)
    assert a.bands["max_drawdown"]["p95"] is not None and a.bands["max_drawdown"]["p95"] <= 0.0

    shuffled = monte_carlo_trades(result, n_sims=300, seed=1)
    tr = shuffled.bands["total_return"]
    assert tr["p5"] == pytest.approx(tr["p95"], rel=1e-9)  # order does not change a product
    assert shuffled.bands["max_drawdown"]["p5"] != shuffled.bands["max_drawdown"]["p95"]
    boot = monte_carlo_trades(result, n_sims=300, seed=1, method="bootstrap")
    assert boot.bands["total_return"]["p5"] != boot.bands["total_return"]["p95"]
    with pytest.raises(ValueError, match="block_days"):
        monte_carlo_returns(result, block_days=0)


def test_fingerprint_is_reproducible_and_sensitive() -> None:
    strategy = {"name": "sma_crossover", "params": {"fast": 10, "slow": 30}}
    cfg = {"strategy": strategy, "config": CONFIG.model_dump(mode="json")}

    def run() -> tuple[str, str]:
        r = backtest(BTC, create_strategy("sma_crossover", strategy["params"]), CONFIG)
        fp = fingerprint(BTC, cfg, r.trade_log, "aaiti 0.1.0+test", symbols=r.symbols)
        return fp.combined, fp.trades

    first, trades_hash = run()
    assert run() == (first, trades_hash)
    other_cfg = {"strategy": {**strategy, "params": {"fast": 11, "slow": 30}}, "config": cfg["config"]}
    r = backtest(BTC, create_strategy("sma_crossover", {"fast": 10, "slow": 30}), CONFIG)
    assert fingerprint(BTC, other_cfg, r.trade_log, "aaiti 0.1.0+test", r.symbols).combined != first
    assert fingerprint(BTC, cfg, r.trade_log, "aaiti 0.1.1", r.symbols).combined != first
    close = BTC.close.copy()
    close[100] += 0.01
    changed = Candles(BTC.ts, BTC.open, BTC.high, BTC.low, close, BTC.volume)
    assert hash_candles(changed) != hash_candles(BTC)
    assert canonical_json({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json({"x": float("nan")})
