"""``aaiti train`` trains in-process (no server) and prints the same metrics the API stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from aaiti.ml.tasks import metrics_report
from aaiti.ml.training import train

END = "2016-12-31"
END_MS = 1483142400000


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AAITI_")}
    return subprocess.run(
        [sys.executable, "-m", "aaiti", "train", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _in_process(spec: dict[str, Any]) -> dict[str, Any]:
    return train(spec, lambda f, m: None, lambda: False)


def test_train_prints_the_metrics_report() -> None:
    done = _run("--dataset", "BTC-USD_1d", "--algorithm", "arima", "--horizon", "1", "--end", END)
    assert done.returncode == 0, done.stderr
    assert "%" in done.stderr, "progress goes to stderr"
    expected = _in_process({"algorithm": "arima", "dataset": "BTC-USD_1d", "horizon": 1, "end_ts": END_MS})
    report = metrics_report(expected, source="BTC-USD_1d").splitlines()
    table = [line for line in report if line.split() and line.split()[0] in ("mae", "rmse", "mase", "coverage")]
    assert len(table) == 4
    for line in table:
        assert line in done.stdout.splitlines(), line
    assert f"fingerprint {expected['data_fingerprint']}" in done.stdout
    assert f"sha256 {expected['artifact']['sha256']}" in done.stdout


def test_train_json_matches_the_job_result_and_errors_are_clean() -> None:
    done = _run(
        "--dataset",
        "BTC-USD_1d",
        "--algorithm",
        "moving_average",
        "--params",
        '{"window": 10}',
        "--evaluation",
        "walk_forward",
        "--end",
        str(END_MS),
        "--json",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = json.loads(done.stdout)
    expected = _in_process(
        {
            "algorithm": "moving_average",
            "params": {"window": 10},
            "dataset": "BTC-USD_1d",
            "end_ts": END_MS,
            "evaluation": {"method": "walk_forward"},
        }
    )
    assert out["metrics"] == json.loads(json.dumps(expected["metrics"]))
    assert out["artifact"]["sha256"] == expected["artifact"]["sha256"] and "bytes" not in out["artifact"]
    bad = _run("--dataset", "BTC-USD_1d", "--algorithm", "arima", "--params", '{"d": 7}', "--quiet")
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid parameters for arima")
    unknown = _run("--dataset", "NOPE_1d", "--algorithm", "naive", "--quiet")
    assert unknown.returncode == 2 and "unknown dataset" in unknown.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr
