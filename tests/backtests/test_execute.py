"""The run itself (what the job worker and the CLI execute), without a server: reproducibility of the
fingerprint, what each hash covers, the candle hand-over to the worker, chart downsampling, the run kinds."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aaiti.backtests.schemas import MonteCarloSpec, SweepSpec, WalkForwardSpec
from aaiti.backtests.tasks import (
    MAX_CHART_POINTS,
    BacktestJobParams,
    CandleInput,
    PackedCandles,
    RunSpec,
    code_version,
    execute,
    load_inputs,
    prepare_candles,
    source_hash,
)
from aaiti.data import load_bundled
from aaiti.trading.candles import Candles
from aaiti.trading.engine import BacktestConfig, backtest
from aaiti.trading.metrics import compute_metrics, metrics_to_dict
from aaiti.trading.strategies import create_strategy

MS_2017 = int(datetime(2017, 1, 1, tzinfo=UTC).timestamp() * 1000)
MS_2018 = int(datetime(2018, 1, 1, tzinfo=UTC).timestamp() * 1000)
MS_2019 = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _spec(**overrides: Any) -> RunSpec:
    base: dict[str, Any] = {
        "name": "t",
        "kind": "single",
        "symbols": ["BTC"],
        "timeframe": "1d",
        "start_ms": MS_2017,
        "end_ms": MS_2018,
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 30, "short": False},
        "config": BacktestConfig.model_validate({"fees": {"taker_bps": 10}}),
    }
    base.update(overrides)
    return RunSpec.model_validate(base)


def _btc_2017() -> dict[str, Candles]:
    return {"BTC": prepare_candles(load_bundled("BTC-USD_1d"), "1d", "1d", MS_2017, MS_2018)}


def test_range_is_half_open_on_open_times() -> None:
    c = _btc_2017()["BTC"]
    assert len(c) == 365
    assert int(c.ts[0]) == MS_2017 and int(c.ts[-1]) == MS_2018 - 86_400_000


def test_same_spec_same_data_same_fingerprint_and_output() -> None:
    first = execute(_spec(), _btc_2017())
    second = execute(_spec(), _btc_2017())
    assert first["fingerprint"] == second["fingerprint"]
    assert first["metrics"] == second["metrics"]
    assert first["trades"] == second["trades"]
    assert first["fingerprint"]["code_version"] == code_version()
    assert len(first["fingerprint"]["combined"]) == 64


def test_output_is_what_the_kernel_computes() -> None:
    """The stored numbers are the kernel's, not a re-derivation: same metrics, same trades, same equity."""
    out = execute(_spec(), _btc_2017())
    direct = backtest(_btc_2017(), create_strategy("sma_crossover", {"fast": 10, "slow": 30}), _spec().config)
    assert out["metrics"] == metrics_to_dict(compute_metrics(direct))
    assert [t["pnl"] for t in out["trades"]] == [t.pnl for t in direct.trades]
    assert out["final_equity"] == direct.final_equity
    assert out["equity"]["values"] == direct.equity.tolist()
    assert all(t["entry_reason"] == "signal" and t["exit_reason"] for t in out["trades"])
    assert out["trades_summary"]["count"] == len(direct.trades)


def test_each_hash_covers_its_input() -> None:
    base = execute(_spec(), _btc_2017())["fingerprint"]
    fee = execute(_spec(config=BacktestConfig.model_validate({"fees": {"taker_bps": 11}})), _btc_2017())["fingerprint"]
    assert fee["data"] == base["data"] and fee["config"] != base["config"] and fee["combined"] != base["combined"]
    assert fee["trades"] != base["trades"], "fees change every trade's P&L"
    candles = _btc_2017()["BTC"]
    close = candles.close.copy()
    close[200] *= 1.0001
    nudged = Candles(candles.ts, candles.open, candles.high, candles.low, close, candles.volume)
    moved = execute(_spec(), {"BTC": nudged})["fingerprint"]
    assert moved["data"] != base["data"] and moved["config"] == base["config"]
    renamed = execute(_spec(name="another name"), _btc_2017())["fingerprint"]
    assert renamed == base, "the name is a label, not an input"


def test_code_version_hashes_the_kernel_sources(tmp_path: Path) -> None:
    import aaiti.trading

    package, _, source = code_version().partition("+src.")
    kernel = Path(aaiti.trading.__file__).parent
    assert package and source == source_hash(kernel)[:16]
    copy = tmp_path / "trading"
    shutil.copytree(kernel, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert source_hash(copy) == source_hash(kernel)
    fills = copy / "fills.py"
    fills.write_text(fills.read_text() + "\n# one changed byte in a fill rule changes the code version\n")
    assert source_hash(copy) != source_hash(kernel)


def test_packed_candles_round_trip_exactly() -> None:
    c = load_bundled("BTC-USD_1h").slice(0, 5000)
    back = PackedCandles.pack(c).unpack()
    for col in ("ts", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(back, col), getattr(c, col), equal_nan=True), col
    packed = PackedCandles.pack(c).model_dump()
    packed["n"] = 4999
    with pytest.raises(ValueError, match="truncated"):
        PackedCandles.model_validate(packed).unpack()


def test_worker_reads_bundled_reference_and_inline_candles_alike() -> None:
    spec = _spec(timeframe="4h", start_ms=MS_2019 + 3_600_000, end_ms=MS_2019 + 30 * 86_400_000)
    from_file = load_inputs(
        spec, [CandleInput(symbol="BTC", source="bundled:bitstamp", stored_timeframe="1h", dataset="BTC-USD_1h")]
    )["BTC"]
    # Complete 4h buckets only: the one opening at 00:00 misses its first hour and is dropped.
    assert int(from_file.ts[0]) == MS_2019 + 4 * 3_600_000
    assert np.all(np.diff(from_file.ts) == 4 * 3_600_000)
    hourly = load_bundled("BTC-USD_1h")
    first = int(np.searchsorted(hourly.ts, from_file.ts[0]))
    assert from_file.open[0] == hourly.open[first] and from_file.close[0] == hourly.close[first + 3]
    assert from_file.high[0] == hourly.high[first : first + 4].max()
    inline = load_inputs(
        spec, [CandleInput(symbol="BTC", source="csv", stored_timeframe="4h", packed=PackedCandles.pack(from_file))]
    )["BTC"]
    assert np.array_equal(inline.close, from_file.close) and np.array_equal(inline.ts, from_file.ts)
    params = BacktestJobParams.model_validate(
        {
            "backtest_id": "00000000-0000-4000-8000-000000000000",
            "spec": spec.model_dump(mode="json"),
            "inputs": [
                {"symbol": "BTC", "source": "bundled:bitstamp", "stored_timeframe": "1h", "dataset": "BTC-USD_1h"}
            ],
            "expected_bars": len(from_file),
        }
    )
    assert params.spec == spec, "the spec survives the JSON of the job row unchanged"


def test_chart_series_are_downsampled_but_keep_the_extremes() -> None:
    hourly = load_bundled("BTC-USD_1h")
    spec = _spec(timeframe="1h", start_ms=int(hourly.ts[0]), end_ms=int(hourly.ts[-1]) + 3_600_000)
    out = execute(spec, {"BTC": hourly})
    assert out["bars"] == len(hourly) > 30_000
    for key in ("equity", "drawdown", "benchmark"):
        series = out[key]
        assert len(series["ts"]) == len(series["values"]) <= MAX_CHART_POINTS + 1
        assert series["ts"] == sorted(series["ts"])
    assert min(out["drawdown"]["values"]) == pytest.approx(out["metrics"]["max_drawdown"]["value"])
    assert max(out["equity"]["values"]) >= out["final_equity"]


def test_sweep_table_and_best_run() -> None:
    spec = _spec(kind="sweep", sweep=SweepSpec(grid={"fast": [5, 10, 40], "slow": [20, 30]}))
    out = execute(spec, _btc_2017())
    rob = out["robustness"]
    assert rob["type"] == "sweep" and len(rob["rows"]) == 6
    bad = [r for r in rob["rows"] if r["error"]]
    assert [r["params"]["fast"] for r in bad] == [40, 40], "fast >= slow is a failed row, not a failed sweep"
    ok = [r for r in rob["rows"] if r["metrics"]]
    best = max(ok, key=lambda r: r["metrics"]["values"]["sharpe"])
    assert rob["best_params"] == best["params"]
    assert out["metrics"]["sharpe"]["value"] == pytest.approx(best["metrics"]["values"]["sharpe"])
    assert out["fingerprint"]["results"] and len(out["fingerprint"]["results"]) == 64


def test_grid_values_keep_their_json_types() -> None:
    grid = SweepSpec.model_validate_json('{"grid": {"short": [false, true], "fast": [5], "k": [2.5]}}').grid
    assert grid == {"short": [False, True], "fast": [5], "k": [2.5]}
    assert [type(v) for v in grid["short"]] == [bool, bool] and type(grid["fast"][0]) is int


def test_walk_forward_stitches_out_of_sample_windows() -> None:
    spec = _spec(
        kind="walk_forward",
        walk_forward=WalkForwardSpec(grid={"fast": [5, 10], "slow": [20, 30]}, train_bars=120, test_bars=60),
    )
    candles = _btc_2017()
    out = execute(spec, candles)
    windows = out["robustness"]["windows"]
    assert len(windows) == 5  # (365 - 120) / 60, the last one short
    assert windows[0]["test"] == [120, 180] and windows[-1]["test"] == [360, 365]
    # The stitched curve covers exactly the out-of-sample bars.
    assert out["equity"]["ts"][0] == int(candles["BTC"].ts[120])
    assert len(out["equity"]["ts"]) == 365 - 120
    assert all(t["entry_bar"] >= 120 for t in out["trades"])


def test_walk_forward_reports_each_window_and_stops_when_cancelled() -> None:
    spec = _spec(
        kind="walk_forward",
        walk_forward=WalkForwardSpec(grid={"fast": [5, 10], "slow": [20, 30]}, train_bars=120, test_bars=60),
    )
    candles = _btc_2017()
    reports: list[tuple[float, str]] = []
    execute(spec, candles, progress=lambda f, m: reports.append((f, m)))
    windows = [(f, m) for f, m in reports if m.startswith("walk-forward: window")]
    assert [m for _, m in windows] == [f"walk-forward: window {i}/5 optimised and tested" for i in range(1, 6)]
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] <= 1.0

    class Stop(Exception):
        pass

    checks = 0

    def check() -> None:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise Stop

    seen: list[str] = []
    with pytest.raises(Stop):
        execute(spec, candles, progress=lambda _f, m: seen.append(m), check=check)
    assert [m for m in seen if m.startswith("walk-forward: window")] == [
        "walk-forward: window 1/5 optimised and tested"
    ]


def test_monte_carlo_bands_are_seeded() -> None:
    spec = _spec(kind="monte_carlo", monte_carlo=MonteCarloSpec(n_sims=300, seed=7))
    a = execute(spec, _btc_2017())["robustness"]
    b = execute(spec, _btc_2017())["robustness"]
    assert a == b
    bands = a["bands"]["max_drawdown"]
    assert bands["p5"] <= bands["p50"] <= bands["p95"] <= 0
    other = execute(_spec(kind="monte_carlo", monte_carlo=MonteCarloSpec(n_sims=300, seed=8)), _btc_2017())
    assert other["robustness"]["bands"] != a["bands"]


def test_portfolio_of_two_symbols_with_rules_stops_and_a_risk_halt() -> None:
    """Multi-symbol through the request path: shared cash, aligned bars, the event engine (risk halts need it)."""
    from aaiti.backtests.schemas import BacktestIn
    from aaiti.backtests.service import plan_offline

    sma = {"indicator": "sma", "params": {"period": 30}}
    request = BacktestIn.model_validate(
        {
            "symbols": ["BTC", "ETH-USD"],
            "timeframe": "1d",
            "start": "2018-01-01T00:00:00Z",
            "end": "2019-06-01T00:00:00Z",
            "strategy": "rules",
            "params": {
                "entry_long": {
                    "left": {"indicator": "sma", "params": {"period": 10}},
                    "op": "crosses_above",
                    "right": sma,
                },
                "exit_long": {"left": {"price": "close"}, "op": "<", "right": sma},
            },
            "config": {"stops": {"stop_loss": 0.1}, "risk": {"max_drawdown": 0.5}},
        }
    )
    plan = plan_offline(request, {"BTC": "BTC-USD_1d", "ETH": "ETH-USD_1d"})
    lo, hi = request.start.timestamp() * 1000, request.end.timestamp() * 1000
    days = [prepare_candles(load_bundled(n), "1d", "1d", int(lo), int(hi)).ts for n in ("BTC-USD_1d", "ETH-USD_1d")]
    common = np.intersect1d(*days)
    assert plan.spec.symbols == ["BTC", "ETH"] and plan.bars == len(common) < 516, "bars missing from one are dropped"
    assert np.array_equal(plan.resolved[0].candles.ts, plan.resolved[1].candles.ts)
    out = execute(plan.spec, {r.symbol: r.candles for r in plan.resolved})
    assert out["engine"] == "event"
    summary = out["trades_summary"]
    assert set(summary["by_symbol"]) == {"BTC", "ETH"} and summary["by_exit_reason"]["stop_loss"] > 0
