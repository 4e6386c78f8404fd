"""Features are causal (perturbing the future never changes the past) and targets are aligned."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from aaiti.data import load_bundled
from aaiti.ml.features import (
    FeatureConfig,
    build_training_data,
    compute_features,
    forward_log_returns,
    make_target,
)
from aaiti.trading.candles import Candles

ALL_INDICATORS = {
    "lags": 4,
    "indicators": [
        {"name": "rsi", "period": 14},
        {"name": "macd", "fast": 12, "slow": 26, "signal": 9},
        {"name": "bbands", "period": 20, "nbdev": 2.0},
        {"name": "sma_ratio", "period": 10},
        {"name": "ema_ratio", "period": 30},
        {"name": "atr", "period": 14},
        {"name": "volatility", "period": 20},
        {"name": "volume_z", "period": 20},
    ],
}


def _perturb_after(c: Candles, t: int, seed: int) -> Candles:
    """Replace every bar after ``t`` with different (but valid) prices and volumes."""
    rng = np.random.default_rng(seed)
    n = len(c)
    factor = np.ones(n)
    factor[t + 1 :] = np.exp(rng.normal(0.0, 0.2, n - t - 1))
    widen = np.ones(n)
    widen[t + 1 :] = rng.uniform(1.0, 1.05, n - t - 1)
    vol = c.volume.copy()
    vol[t + 1 :] = vol[t + 1 :] * rng.uniform(0.1, 10.0, n - t - 1)
    return Candles(c.ts, c.open * factor, c.high * factor * widen, c.low * factor / widen, c.close * factor, vol)


@pytest.mark.parametrize("t", [60, 150, 299])
def test_features_at_t_ignore_the_future(t: int) -> None:
    candles = load_bundled("BTC-USD_1d").slice(0, 400)
    config = FeatureConfig.model_validate(ALL_INDICATORS)
    base, names, _ = compute_features(candles, config)
    changed, _, _ = compute_features(_perturb_after(candles, t, seed=t), config)
    assert len(names) == base.shape[1] == 4 + 1 + 3 + 2 + 1 + 1 + 1 + 1 + 1
    np.testing.assert_array_equal(base[: t + 1], changed[: t + 1])
    # The perturbation is real: the features after t do move.
    assert not np.allclose(base[t + 1 :], changed[t + 1 :], equal_nan=True)


def test_features_are_scale_free() -> None:
    c = load_bundled("BTC-USD_1d").slice(0, 300)
    scaled = Candles(c.ts, c.open * 1000, c.high * 1000, c.low * 1000, c.close * 1000, c.volume)
    config = FeatureConfig.model_validate(ALL_INDICATORS)
    a, _, _ = compute_features(c, config)
    b, _, _ = compute_features(scaled, config)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)


def test_training_data_warmup_and_head() -> None:
    c = load_bundled("BTC-USD_1d").slice(0, 200)
    data = build_training_data(c, FeatureConfig(), horizon=2)
    assert np.all(np.isnan(data.features[: data.first_valid]).any(axis=1))
    assert np.all(np.isfinite(data.features[data.first_valid :]))
    assert data.first_valid <= FeatureConfig().warmup()
    head = data.head(120)
    assert len(head) == 120
    np.testing.assert_array_equal(head.features, build_training_data(c.slice(0, 120), FeatureConfig(), 2).features)


def test_targets_are_h_bars_ahead() -> None:
    close = np.array([100.0, 110.0, 99.0, 120.0])
    np.testing.assert_allclose(make_target(close, 2, "price"), [99.0, 120.0, np.nan, np.nan])
    np.testing.assert_allclose(
        make_target(close, 1, "log_return"), [np.log(1.1), np.log(0.9), np.log(120 / 99), np.nan]
    )
    fwd = forward_log_returns(close, 2)
    np.testing.assert_allclose(fwd[0], [np.log(1.1), np.log(0.99)])
    assert np.isnan(fwd[3]).all()
    assert np.isnan(fwd[2, 1])


def test_feature_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        FeatureConfig.model_validate({"indicators": [{"name": "macd", "fast": 30, "slow": 20}]})
    with pytest.raises(ValidationError):
        FeatureConfig.model_validate({"lags": 0, "indicators": []})
    with pytest.raises(ValidationError):
        FeatureConfig.model_validate({"lags": 3, "extra": True})
    with pytest.raises(ValidationError):
        FeatureConfig.model_validate({"indicators": [{"name": "no_such_indicator"}]})
    dup = FeatureConfig.model_validate({"indicators": [{"name": "rsi"}, {"name": "rsi"}]})
    with pytest.raises(ValueError, match="twice"):
        compute_features(load_bundled("BTC-USD_1d").slice(0, 100), dup)
