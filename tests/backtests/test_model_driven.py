"""Model-driven backtests: ``forecast_threshold`` driven by a trained model version, with its forecasts computed
in the worker from the verified artefact and used only after the version's training window (no look-ahead)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from aaiti.backtests.tasks import ModelRef, model_forecasts
from aaiti.data import load_bundled
from aaiti.ml.artifacts import ArtifactIntegrityError
from aaiti.ml.training import train
from aaiti.trading.strategies import ALL_STRATEGIES, STRATEGIES, create_strategy
from tests.backtests.helpers import body, run_to_completion
from tests.conftest import Account
from tests.ml.api_support import create, train_and_wait

DAILY = load_bundled("BTC-USD_1d")
#: Covers the end of a model trained on bars 0..399 (its training window ends in October 2015).
RANGE = {"start": "2015-06-01T00:00:00Z", "end": "2016-06-01T00:00:00Z"}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


def _forecast_body(model_id: str, **overrides: Any) -> dict[str, Any]:
    return body(**{"strategy": "forecast_threshold", "params": {}, "model_id": model_id, **RANGE, **overrides})


@pytest.fixture(scope="module")
def linear_version() -> dict[str, Any]:
    """A linear model trained in-process on bars 0..399 (what the training job would store)."""
    return train(
        {"algorithm": "linear", "dataset": "BTC-USD_1d", "end_ts": int(DAILY.ts[399])},
        lambda _f, _m: None,
        lambda: False,
    )


def _ref(version: dict[str, Any]) -> ModelRef:
    return ModelRef(
        model_id=uuid.uuid4(),
        version=1,
        algorithm=version["algorithm"],
        sha256=version["artifact"]["sha256"],
        training_end_ts=version["training_window"]["end_ts"],
        horizon=1,
    )


def test_forecasts_only_after_the_training_window_and_causal(linear_version: dict[str, Any]) -> None:
    ref = _ref(linear_version)
    candles = DAILY.slice(250, 700)
    f = model_forecasts(linear_version["artifact"]["bytes"], ref, {"BTC": candles})[0]["BTC"]
    after = candles.ts > ref.training_end_ts
    assert np.isnan(f[~after]).all()
    assert np.isfinite(f[after][40:]).all() and (np.abs(f[after]) <= 1).all()
    assert len(np.unique(np.sign(f[after][40:]))) > 1
    # Perturbing the future leaves every earlier forecast unchanged.
    cut = 500
    g = model_forecasts(
        linear_version["artifact"]["bytes"],
        ref,
        {"BTC": candles.slice(0, cut)},
    )[0]["BTC"]
    np.testing.assert_array_equal(f[:cut], g)


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_walk_forward_refit_is_causal(linear_version: dict[str, Any], window: str) -> None:
    ref = _ref(linear_version).model_copy(
        update={"policy": "walk_forward_refit", "refit_every": 20, "train_bars": 200, "window": window}
    )
    candles = DAILY.slice(0, 600)
    f, summary = model_forecasts(linear_version["artifact"]["bytes"], ref, {"BTC": candles})
    # The first fit uses bars 0..199 and forecasts from bar 199 on; 401 bars in 21 blocks of 20.
    assert summary["refits"] == 21 and summary["policy"] == "walk_forward_refit"
    assert np.isnan(f["BTC"][:199]).all() and np.isfinite(f["BTC"][199:]).all()
    # No dependence on the training window of the stored version: it forecasts bars inside it too.
    assert candles.ts[199] < ref.training_end_ts
    g = model_forecasts(linear_version["artifact"]["bytes"], ref, {"BTC": candles.slice(0, 450)})[0]["BTC"]
    # Perturbing (here: removing) the future leaves earlier forecasts unchanged, up to BLAS rounding.
    np.testing.assert_allclose(f["BTC"][:450], g, rtol=1e-9, atol=1e-12)


def test_tampered_artefact_is_refused(linear_version: dict[str, Any]) -> None:
    data = bytearray(linear_version["artifact"]["bytes"])
    data[-1] ^= 1
    with pytest.raises(ArtifactIntegrityError):
        model_forecasts(bytes(data), _ref(linear_version), {"BTC": DAILY.slice(0, 500)})


def test_strategy_thresholds_and_confidence_sizing() -> None:
    assert "forecast_threshold" in ALL_STRATEGIES and "forecast_threshold" not in STRATEGIES
    c = DAILY.slice(0, 6)
    f = np.array([np.nan, 0.05, 0.3, -0.3, -0.05, 0.8])
    fixed = create_strategy("forecast_threshold", {"short_below": 0.0, "min_confidence": 0.6})
    np.testing.assert_array_equal(fixed.targets(c, f), [0, 0, 1, -1, 0, 1])
    sized = create_strategy("forecast_threshold", {"sizing": "confidence"})
    np.testing.assert_allclose(sized.targets(c, f), [0, 0.05, 0.3, 0, 0, 0.8])
    stream = sized.stream()
    got = [stream.update(0, 1, 1, 1, 1, 1, None if np.isnan(x) else float(x)) for x in f]
    np.testing.assert_allclose(got, [0, 0.05, 0.3, 0, 0, 0.8])


async def test_linear_model_drives_a_reproducible_backtest(
    client: httpx.AsyncClient, app: Any, alice: Account, bob: Account
) -> None:
    model = await create(client, alice, algorithm="linear")
    await train_and_wait(client, alice, model["id"])
    versions = (await client.get(f"/api/models/{model['id']}/versions", headers=alice.headers)).json()
    window_end = versions["items"][0]["training_window"]["end_ts"]
    assert _ms(RANGE["start"]) < window_end < _ms(RANGE["end"])

    first = await run_to_completion(client, alice, _forecast_body(model["id"]))
    assert first["strategy"] == "forecast_threshold"
    trades = first["trades"]["items"]
    assert trades, "a linear model over seven months should trade"
    entry_ms = [_ms(t["entry_time"]) for t in trades]
    # Decided on a bar after the window's end, filled at the next bar's open.
    assert min(entry_ms) > window_end + 86_400_000 - 1
    ref = first["run_options"]["model"]
    assert ref["model_id"] == model["id"] and ref["version"] == 1
    assert ref["policy"] == "after_training_window" and ref["training_end_ts"] == window_end
    coverage = first["run_options"]["forecast"]["symbols"]["BTC"]
    assert coverage["first_forecast_ts"] > window_end

    second = await run_to_completion(client, alice, _forecast_body(model["id"]))
    assert second["fingerprint"] == first["fingerprint"]
    assert second["fingerprint_parts"]["config"] == first["fingerprint_parts"]["config"]

    # Sizing by confidence is a different config: a different fingerprint.
    sized = await run_to_completion(client, alice, _forecast_body(model["id"], params={"sizing": "confidence"}))
    assert sized["fingerprint"] != first["fingerprint"]

    # The results reference the model: it cannot be deleted while they exist.
    r = await client.delete(f"/api/models/{model['id']}", headers=alice.headers)
    assert r.status_code == 409, r.text

    # Another user's model reads as missing.
    r = await client.post("/api/backtests", headers=bob.headers, json=_forecast_body(model["id"]))
    assert r.status_code == 404, r.text


async def test_walk_forward_refit_run(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    model = await create(client, alice, algorithm="linear")
    await train_and_wait(client, alice, model["id"])
    options = {"policy": "walk_forward_refit", "refit_every": 30, "train_bars": 120, "window": "rolling"}
    payload = _forecast_body(model["id"], forecast=options)
    first = await run_to_completion(client, alice, payload)
    ref = first["run_options"]["model"]
    assert ref["policy"] == "walk_forward_refit" and ref["refit_every"] == 30 and ref["window"] == "rolling"
    assert first["run_options"]["forecast"]["refits"] == 9  # 366 bars: fits at bars 119, 149, ..., 359
    entry_ms = [_ms(t["entry_time"]) for t in first["trades"]["items"]]
    assert entry_ms and min(entry_ms) > _ms(RANGE["start"]) + 119 * 86_400_000
    second = await run_to_completion(client, alice, payload)
    assert second["fingerprint"] == first["fingerprint"]

    # 731 bars refitted every 5 from bar 59: 135 fits, over the cap.
    too_many = _forecast_body(
        model["id"], end="2017-06-01T00:00:00Z", forecast={**options, "refit_every": 5, "train_bars": 60}
    )
    r = await client.post("/api/backtests", headers=alice.headers, json=too_many)
    assert r.status_code == 422 and "refit_every" in r.text
    r = await client.post(
        "/api/backtests", headers=alice.headers, json=_forecast_body(model["id"], forecast={"refit_every": 1})
    )
    assert r.status_code == 422, r.text


async def test_model_errors(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    untrained = await create(client, alice)
    r = await client.post("/api/backtests", headers=alice.headers, json=_forecast_body(untrained["id"]))
    assert r.status_code == 409, r.text
    assert "no trained version" in r.text

    r = await client.post("/api/backtests", headers=alice.headers, json=_forecast_body(str(uuid.uuid4())))
    assert r.status_code == 404, r.text

    no_model = body(strategy="forecast_threshold", params={}, **RANGE)
    r = await client.post("/api/backtests", headers=alice.headers, json=no_model)
    assert r.status_code == 422 and "model_id" in r.text

    r = await client.post("/api/backtests", headers=alice.headers, json=body(model_id=untrained["id"]))
    assert r.status_code == 422 and "does not use a model" in r.text

    sweep = _forecast_body(untrained["id"], kind="sweep", sweep={"grid": {"long_above": [0.0, 0.1]}})
    r = await client.post("/api/backtests", headers=alice.headers, json=sweep)
    assert r.status_code == 422 and "single or monte_carlo" in r.text


async def test_range_before_the_window_end_is_refused(client: httpx.AsyncClient, app: Any, alice: Account) -> None:
    model = await create(client, alice)
    await train_and_wait(client, alice, model["id"])
    early = _forecast_body(model["id"], start="2015-01-01T00:00:00Z", end="2015-06-01T00:00:00Z")
    r = await client.post("/api/backtests", headers=alice.headers, json=early)
    assert r.status_code == 422, r.text
    assert "training window" in r.text

    r = await client.post("/api/backtests", headers=alice.headers, json=_forecast_body(model["id"], model_version=7))
    assert r.status_code == 404 and "no version 7" in r.text
