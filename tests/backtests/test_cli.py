"""``aaiti backtest``: the API's run and report on the terminal, no server."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from aaiti.backtests.schemas import BacktestIn
from aaiti.backtests.service import plan_offline
from aaiti.backtests.tasks import execute
from aaiti.cli import main
from tests.backtests.helpers import body

ARGS = [
    "backtest",
    "--dataset",
    "BTC-USD_1d",
    "--strategy",
    "sma_crossover",
    "--params",
    '{"fast":10,"slow":30}',
    "--fee-bps",
    "10",
    "--start",
    "2017-01-01",
    "--end",
    "2018-01-01",
]


def _api_output_for(end: str = "2018-01-01") -> dict[str, Any]:
    """What the API's worker computes for the same run (tests/backtests/test_api.py checks the API stores it)."""
    plan = plan_offline(BacktestIn.model_validate(body(end=f"{end}T00:00:00Z")), {"BTC": "BTC-USD_1d"})
    return execute(plan.spec, {"BTC": plan.resolved[0].candles})


def test_report_matches_the_api_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--trades", "3"]) == 0
    text = capsys.readouterr().out
    expected = _api_output_for()
    fp = expected["fingerprint"]
    assert f"Fingerprint {fp['combined']}" in text, "the same run as POST /api/backtests with these settings"
    assert "365 bars" in text and "engine vectorized" in text
    metrics = expected["metrics"]
    sharpe = metrics["sharpe"]["value"]
    assert f"{sharpe:,.3f}" in text
    assert f"{metrics['total_return']['value'] * 100:,.2f} %" in text
    trades = expected["trades"]
    assert f"Trades: {len(trades)} (long {len(trades)})" in text
    assert text.count("signal ") >= 3, "the first three trades are listed with their exit reason"
    assert f"... {len(trades) - 3} more" in text


def test_json_output_and_undefined_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS[:-4], "--start", "2017-01-01", "--end", "2017-03-15", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bars"] == 73 and len(out["equity"]["ts"]) == 73
    assert out["metrics"] == _api_output_for("2017-03-15")["metrics"]
    # 24 days are too few for the annualised metrics: the report says so instead of printing a number.
    assert main([*ARGS[:-4], "--start", "2017-01-01", "--end", "2017-01-25", "--params", '{"fast":5,"slow":10}']) == 0
    text = capsys.readouterr().out
    assert "needs at least 30 daily returns, have 24" in text and "—" in text


def test_robustness_kinds_on_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--kind", "sweep", "--grid", '{"fast":[5,10],"slow":[20,30]}']) == 0
    assert "Sweep: 4 parameter sets (0 invalid); top by sharpe" in capsys.readouterr().out
    assert (
        main([*ARGS, "--kind", "walk-forward", "--grid", '{"fast":[5,10]}', "--train-bars", "120", "--test-bars", "60"])
        == 0
    )
    assert "Walk-forward: 5 windows" in capsys.readouterr().out
    assert main([*ARGS, "--kind", "monte-carlo", "--sims", "100", "--seed", "1"]) == 0
    assert "Monte Carlo (returns_block_bootstrap_5d, 100 paths, seed 1)" in capsys.readouterr().out


def test_bad_input_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS[:-4], "--start", "2018-01-01", "--end", "2017-01-01"]) == 2
    assert "end must be after start" in capsys.readouterr().err
    assert main([*ARGS[:6], '{"fast":0}']) == 2
    assert "params.fast" in capsys.readouterr().err
    assert main([*ARGS, "--timeframe", "1h"]) == 2
    assert "finer than the BTC data" in capsys.readouterr().err


def test_console_script_runs_without_a_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aaiti", *ARGS, "--trades", "0"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Fingerprint" in done.stdout and "sharpe" in done.stdout
