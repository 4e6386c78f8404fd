"""ARIMA, SARIMA, SARIMAX and Holt-Winters exponential smoothing on the log close.

Estimation: maximum likelihood. ARIMA-family orders are fitted by statsforecast (CSS-ML, R's ``arima``
algorithm; the ``statsmodels`` engine runs ``SARIMAX.fit`` instead), optionally with automatic order
selection by AIC (statsforecast ``AutoARIMA``). Holt-Winters is fitted by statsmodels' state-space
``ExponentialSmoothing`` (statsforecast's seasonal ETS fits were unreliable on log prices: see the report).

Persistence: the model spec and the fitted parameters as JSON (no pickles). Every forecast re-applies the
parameters with a statsmodels Kalman filter over the context (``Model(y).filter(params)``), so new candles
update the state but never the parameters.

Look-ahead: the Kalman filter is causal, and so is the initial state: ARIMA uses the stationary/diffuse
initialisation, Holt-Winters the "heuristic" one, which reads only the first few seasons of the series
(before any forecast origin). SARIMAX regresses ``y[t]`` on the indicator features of bar ``t - h``, so a
forecast up to ``h`` bars ahead needs no future regressor values; beyond ``h`` it is refused.

Origins for scoring are forecast in one vectorised pass: the Kalman filter's one-step predicted state at
each origin is propagated ``h - 1`` further steps with the (time-invariant) transition matrix, which equals
``get_forecast(h)`` from that origin (checked in the tests).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Self

import numpy as np

from aaiti.core.errors import Invalid
from aaiti.ml.estimators.base import (
    ArtifactPayload,
    FitContext,
    FitFailed,
    FloatArray,
    Forecast,
    ForecastKind,
    IntArray,
    OriginForecasts,
    TrainingData,
    check_horizon,
    z_value,
)
from aaiti.ml.estimators.params import ArimaParams, HoltWintersParams, Params, SarimaParams, SarimaxParams

MAX_PATH_STEPS = 1000


@contextmanager
def _quiet() -> Iterator[None]:
    # statsmodels/statsforecast warn about start parameters and convergence on nearly every crypto fit;
    # failures that matter raise, and the fitted likelihood is reported.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _StateSpace:
    kind: ClassVar[ForecastKind] = "value"
    algorithm: ClassVar[str]
    params_model: ClassVar[type[Params]]

    def __init__(self, params: Params, *, horizon: int, level: float, seed: int = 0) -> None:
        self.params = params
        self._horizon = horizon
        self.level = level
        self.seed = seed
        self.spec: dict[str, Any] = {}
        self.sm_params: list[float] = []
        self.fit_info: dict[str, Any] = {}
        self._train: TrainingData | None = None

    @property
    def horizon(self) -> int:
        return self._horizon

    # --- hooks ---------------------------------------------------------------------------------------------

    def _endog_exog(self, data: TrainingData) -> tuple[FloatArray, FloatArray | None, int]:
        """(y, exog, offset): ``y[i]`` is the log close of bar ``offset + i``."""
        return data.log_close, None, 0

    def _future_exog(self, data: TrainingData, steps: int) -> FloatArray | None:
        return None

    def _max_path(self) -> int:
        return MAX_PATH_STEPS

    def _model(self, y: FloatArray, exog: FloatArray | None) -> Any:
        raise NotImplementedError

    def _estimate(self, y: FloatArray, exog: FloatArray | None, ctx: FitContext) -> None:
        """Set ``self.spec`` and ``self.sm_params`` from the training series."""
        raise NotImplementedError

    # --- contract ------------------------------------------------------------------------------------------

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        ctx = ctx or FitContext()
        ctx.checkpoint()
        y, exog, _ = self._endog_exog(train)
        ctx.progress(0.0, f"fitting {self.algorithm} on {len(y)} bars")
        try:
            self._estimate(y, exog, ctx)
        except (FitFailed, Invalid):
            raise
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            raise FitFailed(f"{self.algorithm} fit failed: {exc}") from exc
        if not np.all(np.isfinite(self.sm_params)):
            raise FitFailed(f"{self.algorithm} fit produced non-finite parameters")
        ctx.checkpoint()
        self._train = train
        ctx.progress(1.0, "fitted")
        return self

    def _filter(self, y: FloatArray, exog: FloatArray | None) -> Any:
        try:
            with _quiet():
                return self._model(y, exog).filter(np.asarray(self.sm_params))
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise FitFailed(f"{self.algorithm}: the fitted parameters cannot be applied: {exc}") from exc

    def _data(self, context: TrainingData | None) -> TrainingData:
        data = context if context is not None else self._train
        if data is None:
            raise Invalid("a loaded model needs the recent candles as context to forecast")
        if not self.sm_params:
            raise FitFailed("model is not fitted")
        return data

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        check_horizon(horizon, self._max_path(), self.algorithm)
        data = self._data(context)
        y, exog, _ = self._endog_exog(data)
        res = self._filter(y, exog)
        with _quiet():
            fc = res.get_forecast(horizon, exog=self._future_exog(data, horizon))
            mean = np.asarray(fc.predicted_mean, dtype=np.float64) - y[-1]
            sd = np.sqrt(np.maximum(np.asarray(fc.var_pred_mean, dtype=np.float64), 0.0))
        z = z_value(self.level)
        return Forecast(
            kind="value",
            steps=np.arange(1, horizon + 1, dtype=np.int64),
            level=self.level,
            mean=mean,
            lower=mean - z * sd,
            upper=mean + z * sd,
        )

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        h = self._horizon
        self._data(data)
        y, exog, offset = self._endog_exog(data)
        pos = np.asarray(origins, dtype=np.int64) - offset
        if len(pos) and (pos.min() < 0 or pos.max() + h >= len(y) + (0 if exog is not None else h)):
            raise Invalid("an origin lies outside the span this model can forecast from")
        res = self._filter(y, exog)
        mean_y, var = state_space_h_step(res, pos, h)
        mean = mean_y - y[pos]
        sd = np.sqrt(np.maximum(var, 0.0))
        z = z_value(self.level)
        return OriginForecasts(
            kind="value",
            origins=origins,
            horizon=h,
            level=self.level,
            mean=mean,
            lower=mean - z * sd,
            upper=mean + z * sd,
        )

    def save(self) -> ArtifactPayload:
        return ArtifactPayload(
            meta={
                "horizon": self._horizon,
                "level": self.level,
                "params": self.params.model_dump(mode="json"),
                "spec": self.spec,
                "sm_params": self.sm_params,
                "fit_info": self.fit_info,
            }
        )

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        meta = payload.meta
        obj = cls(
            cls.params_model.model_validate(meta["params"]), horizon=int(meta["horizon"]), level=float(meta["level"])
        )
        obj.spec = dict(meta["spec"])
        obj.sm_params = [float(v) for v in meta["sm_params"]]
        obj.fit_info = dict(meta.get("fit_info", {}))
        return obj


def state_space_h_step(res: Any, pos: IntArray, h: int) -> tuple[FloatArray, FloatArray]:
    """Mean and variance of ``y[pos + h]`` given ``y[0..pos]`` from a statsmodels filter result.

    Uses the one-step predicted state ``a[pos + 1 | pos]`` and propagates it ``h - 1`` steps. Requires
    time-invariant transition, state intercept, selection and covariances (true for SARIMAX and
    ExponentialSmoothing); the observation intercept may vary in time (SARIMAX regressors), and is read at
    ``pos + h``, which must then lie within the filtered sample.
    """
    ssm = res.model.ssm
    kf = res.filter_results
    for name in ("transition", "state_intercept", "selection", "state_cov", "design", "obs_cov"):
        if getattr(ssm, name).shape[-1] != 1:
            raise FitFailed(f"time-varying {name} is not supported")
    transition = ssm.transition[:, :, 0]
    c = ssm.state_intercept[:, 0]
    sel = ssm.selection[:, :, 0]
    rqr = sel @ ssm.state_cov[:, :, 0] @ sel.T
    design = ssm.design[:, :, 0]
    obs_cov = float(ssm.obs_cov[0, 0, 0])
    a = kf.predicted_state[:, pos + 1]
    p = kf.predicted_state_cov[:, :, pos + 1]
    for _ in range(h - 1):
        a = transition @ a + c[:, None]
        p = np.einsum("ij,jkm,lk->ilm", transition, p, transition) + rqr[:, :, None]
    d_all = ssm.obs_intercept
    d = d_all[0, pos + h] if d_all.shape[1] > 1 else np.full(len(pos), d_all[0, 0])
    mean = (design @ a)[0] + d
    var = np.einsum("ik,kjm,ij->m", design, p, design) + obs_cov
    return np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)


# --- Holt-Winters -----------------------------------------------------------------------------------------


class HoltWintersForecaster(_StateSpace):
    """Additive (optionally damped) trend and additive seasonality, Gaussian errors, fitted by MLE."""

    algorithm = "holt_winters"
    params_model = HoltWintersParams
    params: HoltWintersParams

    def _model(self, y: FloatArray, exog: FloatArray | None) -> Any:
        from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

        return ExponentialSmoothing(
            y,
            trend=self.params.trend,
            damped_trend=self.params.damped_trend,
            seasonal=self.params.seasonal_periods,
            initialization_method="heuristic",
            concentrate_scale=False,
        )

    def _estimate(self, y: FloatArray, exog: FloatArray | None, ctx: FitContext) -> None:
        from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

        with _quiet():
            # Concentrating the scale out of the likelihood makes the search smaller; the scale estimate
            # (from the training window only) is then stored as sigma2 for later filtering.
            model = ExponentialSmoothing(
                y,
                trend=self.params.trend,
                damped_trend=self.params.damped_trend,
                seasonal=self.params.seasonal_periods,
                initialization_method="heuristic",
                concentrate_scale=True,
            )
            res = model.fit(disp=False)
        self.sm_params = [float(v) for v in res.params] + [float(res.scale)]
        names = [*model.param_names, "sigma2"]
        self.spec = {"param_names": names}
        self.fit_info = {
            "loglik": float(res.llf),
            "aic": float(res.aic),
            "params": dict(zip(names, self.sm_params, strict=True)),
        }


# --- ARIMA family -----------------------------------------------------------------------------------------


class _ArimaFamily(_StateSpace):
    uses_indicators: ClassVar[bool] = False
    params: ArimaParams

    def _seasonal(self) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    def _indicator_matrix(self, data: TrainingData) -> FloatArray:
        if not data.indicator_columns:
            raise Invalid("SARIMAX needs indicator features as regressors; the feature config has none")
        return data.features[:, list(data.indicator_columns)]

    def _offset(self, data: TrainingData) -> int:
        return data.first_valid + self._horizon if self.uses_indicators else 0

    def _regressors(self, data: TrainingData, rows: IntArray) -> FloatArray | None:
        """Regressor rows for bars ``rows``: [1 (mean)] + standardised indicators of bar ``row - h``."""
        cols: list[FloatArray] = []
        if self.spec.get("mean", False):
            cols.append(np.ones((len(rows), 1)))
        if self.uses_indicators:
            x = self._indicator_matrix(data)[rows - self._horizon]
            mu = np.asarray(self.spec["exog_mean"])
            sd = np.asarray(self.spec["exog_std"])
            cols.append((x - mu) / sd)
        return np.hstack(cols) if cols else None

    def _endog_exog(self, data: TrainingData) -> tuple[FloatArray, FloatArray | None, int]:
        offset = self._offset(data)
        if len(data) - offset < 3:
            raise Invalid("not enough bars after the indicator warm-up")
        rows = np.arange(offset, len(data), dtype=np.int64)
        return data.log_close[offset:], self._regressors(data, rows), offset

    def _future_exog(self, data: TrainingData, steps: int) -> FloatArray | None:
        rows = np.arange(len(data), len(data) + steps, dtype=np.int64)
        return self._regressors(data, rows)

    def _max_path(self) -> int:
        return self._horizon if self.uses_indicators else MAX_PATH_STEPS

    def _model(self, y: FloatArray, exog: FloatArray | None) -> Any:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        p, d, q = self.spec["order"]
        return SARIMAX(y, exog=exog, order=(p, d, q), seasonal_order=tuple(self.spec["seasonal_order"]), trend="n")

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        if self.uses_indicators:
            offset = self._offset(train)
            x = self._indicator_matrix(train)[train.first_valid : len(train) - self._horizon]
            if len(x) < 3:
                raise Invalid("not enough bars after the indicator warm-up")
            sd = x.std(axis=0)
            self.spec = {
                "exog_mean": [float(v) for v in x.mean(axis=0)],
                "exog_std": [float(v) if v > 0 else 1.0 for v in sd],
                "exog_names": [train.feature_names[i] for i in train.indicator_columns],
                "offset": offset,
            }
        else:
            self.spec = {}
        return super().fit(train, ctx)

    def _estimate(self, y: FloatArray, exog: FloatArray | None, ctx: FitContext) -> None:
        # At fit time the orders (and so the mean column) are not known yet: ``exog`` holds only the
        # standardised indicators; the mean is added by each engine when the orders allow one.
        indicators = exog if self.uses_indicators else None
        if self.params.engine == "statsforecast":
            self._estimate_statsforecast(y, indicators)
        else:
            self._estimate_statsmodels(y, indicators)

    def _mean_allowed(self, d: int, big_d: int) -> bool:
        return self.params.include_mean and d == 0 and big_d == 0

    def _estimate_statsforecast(self, y: FloatArray, indicators: FloatArray | None) -> None:
        from statsforecast.models import ARIMA, AutoARIMA

        big_p, big_d, big_q, season = self._seasonal()
        with _quiet():
            if self.params.auto:
                model: Any = AutoARIMA(
                    max_p=self.params.max_p,
                    max_q=self.params.max_q,
                    max_d=self.params.max_d,
                    max_P=getattr(self.params, "max_P", 0) if season else 0,
                    max_Q=getattr(self.params, "max_Q", 0) if season else 0,
                    max_D=1 if season else 0,
                    seasonal=season > 0,
                    season_length=season or 1,
                    ic="aic",
                    allowdrift=False,
                    allowmean=self.params.include_mean,
                )
            else:
                model = ARIMA(
                    order=(self.params.p, self.params.d, self.params.q),
                    season_length=season or 1,
                    seasonal_order=(big_p, big_d, big_q),
                    include_mean=self._mean_allowed(self.params.d, big_d),
                    include_drift=False,
                    method="CSS-ML",
                )
            fitted = model.fit(y, indicators)
        md = fitted.model_
        p, q, sp, sq, s, d, sd = (int(v) for v in md["arma"])
        coef: dict[str, float] = {k: float(v) for k, v in md["coef"].items()}
        if any(k.startswith("drift") for k in coef):
            raise FitFailed("unexpected drift term in the statsforecast fit")
        has_mean = "intercept" in coef
        n_ex = indicators.shape[1] if indicators is not None else 0
        vec = ([coef["intercept"]] if has_mean else []) + [coef[f"ex_{i + 1}"] for i in range(n_ex)]
        vec += [coef[f"ar{i + 1}"] for i in range(p)] + [coef[f"ma{i + 1}"] for i in range(q)]
        vec += [coef[f"sar{i + 1}"] for i in range(sp)] + [coef[f"sma{i + 1}"] for i in range(sq)]
        vec.append(float(md["sigma2"]))
        self.spec.update(
            {"order": [p, d, q], "seasonal_order": [sp, sd, sq, s if (sp or sd or sq) else 0], "mean": has_mean}
        )
        self.sm_params = [float(v) for v in vec]
        self.fit_info = {
            "engine": "statsforecast",
            "order": [p, d, q],
            "seasonal_order": self.spec["seasonal_order"],
            "aic": float(md["aic"]) if md["aic"] is not None and math.isfinite(md["aic"]) else None,
            "loglik": float(md["loglik"]),
            "coef": coef,
            "sigma2": float(md["sigma2"]),
        }

    def _estimate_statsmodels(self, y: FloatArray, indicators: FloatArray | None) -> None:
        big_p, big_d, big_q, season = self._seasonal()
        p, d, q = self.params.p, self.params.d, self.params.q
        has_mean = self._mean_allowed(d, big_d)
        self.spec.update({"order": [p, d, q], "seasonal_order": [big_p, big_d, big_q, season], "mean": has_mean})
        cols = ([np.ones((len(y), 1))] if has_mean else []) + ([indicators] if indicators is not None else [])
        exog = np.hstack(cols) if cols else None
        with _quiet():
            res = self._model(y, exog).fit(disp=False)
        self.sm_params = [float(v) for v in res.params]
        self.fit_info = {
            "engine": "statsmodels",
            "order": [p, d, q],
            "seasonal_order": self.spec["seasonal_order"],
            "aic": float(res.aic),
            "loglik": float(res.llf),
            "params": dict(zip(res.model.param_names, self.sm_params, strict=True)),
        }


class ArimaForecaster(_ArimaFamily):
    algorithm = "arima"
    params_model = ArimaParams


class SarimaForecaster(_ArimaFamily):
    algorithm = "sarima"
    params_model = SarimaParams
    params: SarimaParams

    def _seasonal(self) -> tuple[int, int, int, int]:
        return (self.params.P, self.params.D, self.params.Q, self.params.season_length)


class SarimaxForecaster(_ArimaFamily):
    algorithm = "sarimax"
    params_model = SarimaxParams
    params: SarimaxParams
    uses_indicators = True

    def _seasonal(self) -> tuple[int, int, int, int]:
        if self.params.season_length is None:
            return (0, 0, 0, 0)
        return (self.params.P, self.params.D, self.params.Q, self.params.season_length)
