"""The job function: progress, cooperative cancellation, data fingerprints, artefacts across a restart,
and a recurrent network that really learns (its loss falls across epochs on real candles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aaiti.core.errors import Invalid
from aaiti.data import load_bundled
from aaiti.ml.artifacts import ArtifactStore
from aaiti.ml.estimators.base import Cancelled, FitContext
from aaiti.ml.estimators.neural import LstmForecaster, resolve_device
from aaiti.ml.estimators.params import RecurrentParams
from aaiti.ml.features import FeatureConfig, build_training_data
from aaiti.ml.training import candles_fingerprint, check_spec, load_model, train

DAILY = load_bundled("BTC-USD_1d")


def _never() -> bool:
    return False


def test_cancel_mid_training_stops_between_epochs() -> None:
    events: list[tuple[float, str]] = []

    def report(fraction: float, message: str) -> None:
        events.append((fraction, message))

    def should_cancel() -> bool:
        return sum("epoch" in m for _, m in events) >= 2

    spec = {
        "algorithm": "lstm",
        "params": {"epochs": 50, "patience": 50, "sequence_length": 8, "hidden_size": 8},
        "dataset": "BTC-USD_1d",
        "end_ts": int(DAILY.ts[399]),
    }
    with pytest.raises(Cancelled):
        train(spec, report, should_cancel)
    epochs = [m for _, m in events if m.startswith("epoch")]
    assert epochs[0].startswith("epoch 1/50")
    assert len(epochs) == 2
    assert events[-1][0] < 0.5


def test_cancel_between_trees_and_before_start() -> None:
    seen: list[str] = []
    spec = {
        "algorithm": "random_forest",
        "params": {"n_estimators": 200},
        "dataset": "BTC-USD_1d",
        "end_ts": int(DAILY.ts[399]),
    }
    with pytest.raises(Cancelled):
        train(spec, lambda f, m: seen.append(m), lambda: any("trees" in m for m in seen))
    assert seen[-1] == "random forest: 10/200 trees"
    with pytest.raises(Cancelled):
        train({"algorithm": "naive", "dataset": "BTC-USD_1d"}, lambda f, m: None, lambda: True)


def test_progress_is_monotonic_and_complete() -> None:
    fractions: list[float] = []
    spec = {
        "algorithm": "hist_gradient_boosting",
        "params": {"max_iter": 50},
        "dataset": "BTC-USD_1d",
        "end_ts": int(DAILY.ts[399]),
        "evaluation": {"method": "walk_forward", "folds": 3},
    }
    result = train(spec, lambda f, m: fractions.append(f), _never)
    assert fractions == sorted(fractions)
    assert fractions[0] >= 0
    assert fractions[-1] == 1.0
    assert len(result["metrics"]["folds"]) == 3


def test_lstm_loss_decreases_on_real_data() -> None:
    candles = load_bundled("BTC-USD_1h").slice(10_000, 12_000)
    data = build_training_data(candles, FeatureConfig(), horizon=1)
    params = RecurrentParams(epochs=6, patience=6, sequence_length=16, hidden_size=16, batch_size=64)
    model = LstmForecaster(params, horizon=1, level=0.9, seed=0).fit(data, FitContext())
    losses = model.fit_info["train_loss"]
    assert len(losses) == 6
    assert losses[-1] < losses[0]
    assert np.all(np.diff(losses) < 0.01)  # no epoch makes it clearly worse
    assert model.fit_info["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_follows_cuda_availability() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(Invalid, match="CUDA"):
            resolve_device("cuda")


def test_artifact_survives_restart(tmp_path: Path) -> None:
    candles = DAILY.slice(0, 400)
    spec = {
        "algorithm": "gru",
        "params": {"epochs": 2, "sequence_length": 10, "hidden_size": 8},
        "dataset": "BTC-USD_1d",
        "end_ts": int(candles.ts[-1]),
        "horizon": 3,
    }
    result = train(spec, lambda f, m: None, _never)
    art = result["artifact"]
    stored = ArtifactStore(tmp_path / "models", keep=2).write("model-a", 1, art["bytes"])
    assert stored.sha256 == art["sha256"]
    # A new store instance, as after a server restart, reads the file back and verifies it.
    fresh = ArtifactStore(tmp_path / "models", keep=2)
    loaded = load_model(fresh.read("model-a", 1, art["sha256"]), art["sha256"])
    again = loaded.predict(candles)
    assert again["steps"] == result["forecast"]["steps"]
    assert again["horizon"] == 3
    with pytest.raises(Invalid, match="at most 3"):
        loaded.predict(candles, horizon=4)
    # New candles move the forecast origin without refitting.
    later = loaded.predict(DAILY.slice(0, 410))
    assert later["origin_ts"] == int(DAILY.ts[409])


def test_candles_payload_equals_dataset() -> None:
    c = DAILY.slice(0, 300)
    payload: dict[str, Any] = {
        "ts": c.ts.tolist(),
        "open": c.open.tolist(),
        "high": c.high.tolist(),
        "low": c.low.tolist(),
        "close": c.close.tolist(),
        "volume": c.volume.tolist(),
    }
    by_name = train({"algorithm": "arima", "dataset": "BTC-USD_1d", "end_ts": int(c.ts[-1])}, lambda f, m: None, _never)
    by_rows = train({"algorithm": "arima", "candles": payload}, lambda f, m: None, _never)
    assert by_name["data_fingerprint"] == by_rows["data_fingerprint"] == candles_fingerprint(c)
    assert by_name["metrics"] == by_rows["metrics"]
    assert by_name["artifact"]["sha256"] != ""
    bad = dict(payload, close=[*payload["close"][:-1], -1.0])
    with pytest.raises(Invalid, match="positive"):
        check_spec({"algorithm": "arima", "candles": bad})
    with pytest.raises(Invalid):
        check_spec({"algorithm": "arima", "candles": dict(payload, ts=payload["ts"][::-1])})


def test_check_spec_normalises() -> None:
    out = check_spec({"algorithm": "svm", "dataset": "BTC-USD_1d", "params": {"C": 2}})
    assert out["algorithm"] == "svr"
    assert out["params"]["C"] == 2
    assert out["params"]["kernel"] == "rbf"
    assert "candles" not in out
