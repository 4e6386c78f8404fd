"""ARIMA-family and Holt-Winters: agreement with statsmodels, and causal vectorised origin forecasts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from aaiti.core.errors import Invalid
from aaiti.data import load_bundled
from aaiti.ml.estimators.base import TrainingData
from aaiti.ml.estimators.params import ArimaParams, HoltWintersParams, SarimaParams, SarimaxParams
from aaiti.ml.estimators.statespace import (
    ArimaForecaster,
    HoltWintersForecaster,
    SarimaForecaster,
    SarimaxForecaster,
)
from aaiti.ml.features import FeatureConfig, build_training_data


@pytest.fixture(scope="module")
def daily() -> TrainingData:
    return build_training_data(load_bundled("BTC-USD_1d").slice(0, 800), FeatureConfig(), horizon=1)


@pytest.mark.parametrize("order", [(2, 1, 0), (0, 1, 1)])
def test_arima_matches_statsmodels_sarimax(daily: TrainingData, order: tuple[int, int, int]) -> None:
    y = daily.log_close
    ours = ArimaForecaster(ArimaParams(p=order[0], d=order[1], q=order[2]), horizon=1, level=0.95).fit(daily)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.tsa.SARIMAX(y, order=order).fit(disp=False)
    params = np.asarray(ours.sm_params)
    # Coefficients agree; statsforecast's sigma2 carries a degrees-of-freedom correction (~0.2 % here).
    np.testing.assert_allclose(params[:-1], ref.params[:-1], atol=2e-3)
    assert params[-1] == pytest.approx(ref.params[-1], rel=0.01)
    assert sm.tsa.SARIMAX(y, order=order).loglike(params) >= ref.llf - 0.01
    fc = ours.predict(5)
    ref_fc = ref.get_forecast(5)
    assert fc.mean is not None
    assert fc.upper is not None
    np.testing.assert_allclose(fc.mean + y[-1], ref_fc.predicted_mean, atol=1e-5)
    ref_hi = ref_fc.conf_int(alpha=0.05)[:, 1]
    np.testing.assert_allclose(fc.upper + y[-1], ref_hi, atol=2e-3)


def test_statsmodels_engine_is_statsmodels(daily: TrainingData) -> None:
    ours = ArimaForecaster(ArimaParams(p=1, d=1, q=1, engine="statsmodels"), horizon=1, level=0.9).fit(daily)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.tsa.SARIMAX(daily.log_close, order=(1, 1, 1)).fit(disp=False)
    np.testing.assert_allclose(ours.sm_params, ref.params, rtol=1e-8)


@pytest.mark.parametrize(
    ("cls", "params", "horizon"),
    [
        (ArimaForecaster, ArimaParams(p=2, d=1, q=1), 3),
        (ArimaForecaster, ArimaParams(p=1, d=0, q=0), 2),
        (SarimaForecaster, SarimaParams(season_length=7), 2),
        (SarimaxForecaster, SarimaxParams(p=1, d=1, q=0), 3),
        (HoltWintersForecaster, HoltWintersParams(seasonal_periods=7, damped_trend=True), 4),
    ],
)
def test_origin_forecasts_equal_truncated_forecasts(cls: type, params: object, horizon: int) -> None:
    """Vectorised scoring forecasts equal ``predict`` on data cut at each origin (so nothing later is used)."""
    data = build_training_data(load_bundled("BTC-USD_1d").slice(0, 500), FeatureConfig(), horizon=horizon)
    model = cls(params, horizon=horizon, level=0.9).fit(data.head(400))
    origins = np.array([399, 420, 450, 500 - 1 - horizon], dtype=np.int64)
    of = model.predict_origins(data, origins)
    for i, t in enumerate(origins):
        fc = model.predict(horizon, data.head(int(t) + 1))
        assert fc.mean[-1] == pytest.approx(of.mean[i], abs=1e-9)
        assert fc.upper[-1] == pytest.approx(of.upper[i], abs=1e-9)
        assert fc.lower[-1] == pytest.approx(of.lower[i], abs=1e-9)


def test_sarimax_uses_lagged_regressors_and_refuses_longer_paths(daily: TrainingData) -> None:
    data = build_training_data(load_bundled("BTC-USD_1d").slice(0, 500), FeatureConfig(), horizon=2)
    model = SarimaxForecaster(SarimaxParams(p=1, d=1, q=0), horizon=2, level=0.9).fit(data)
    assert model.spec["exog_names"] == [data.feature_names[i] for i in data.indicator_columns]
    assert len(model.sm_params) == len(data.indicator_columns) + 2
    assert model.predict(2).mean is not None
    with pytest.raises(Invalid, match="at most 2"):
        model.predict(3)
    no_ind = build_training_data(load_bundled("BTC-USD_1d").slice(0, 300), FeatureConfig(indicators=[]), 1)
    with pytest.raises(Invalid, match="indicator"):
        SarimaxForecaster(SarimaxParams(), horizon=1, level=0.9).fit(no_ind)


def test_auto_arima_selects_orders_by_aic(daily: TrainingData) -> None:
    model = ArimaForecaster(ArimaParams(auto=True, max_p=2, max_q=2), horizon=1, level=0.9).fit(daily)
    p, d, q = model.fit_info["order"]
    assert 0 <= p <= 2
    assert 0 <= q <= 2
    assert d in (0, 1, 2)
    assert np.isfinite(model.fit_info["aic"])
