"""Pydantic parameter models, one per algorithm (bounds, defaults, descriptions; unknown keys refused).

These are light (pydantic only) so the API process can list algorithms and validate requests without
importing torch, statsmodels or scikit-learn. Checks that depend on the data (a window longer than the
series, a season that does not repeat twice) read ``n_rows`` and ``horizon`` from the validation context:
``Model.model_validate(params, context={"n_rows": 1800, "horizon": 1})``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

Device = Literal["auto", "cpu", "cuda"]

# Data-size limits that keep one training within a worker's memory and a sensible time.
MIN_TRAIN_ROWS = 30
SVR_MAX_ROWS = 20_000


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _context(info: ValidationInfo) -> tuple[int | None, int]:
    ctx: dict[str, Any] = info.context if isinstance(info.context, dict) else {}
    n_rows = ctx.get("n_rows")
    return (int(n_rows) if n_rows is not None else None), int(ctx.get("horizon", 1))


def _need_rows(info: ValidationInfo, needed: int, what: str) -> None:
    n_rows, _ = _context(info)
    if n_rows is not None and needed > n_rows:
        raise ValueError(f"{what} needs at least {needed} bars of training data, the window has {n_rows}")


# --- baselines -------------------------------------------------------------------------------------------


class NaiveParams(Params):
    """Last value carried forward (random walk). Intervals from the training window's return volatility."""


class DriftParams(Params):
    """Random walk with drift: the average log return of the training window, extrapolated."""


class SeasonalNaiveParams(Params):
    season_length: int = Field(7, ge=2, le=1000, description="Bars per season (7 for daily data, 24 hourly).")

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        _need_rows(info, 2 * self.season_length + 1, "seasonal naive")
        return self


class MovingAverageParams(Params):
    window: int = Field(20, ge=2, le=1000, description="Number of closes averaged (a simple moving average).")

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        _need_rows(info, 2 * self.window + 1, "moving average")
        return self


# --- state-space models (statsmodels / statsforecast) ------------------------------------------------------


class HoltWintersParams(Params):
    trend: bool = Field(True, description="Additive trend component.")
    damped_trend: bool = Field(False, description="Damp the trend towards a flat forecast.")
    seasonal_periods: int | None = Field(
        None, ge=2, le=400, description="Season length in bars for additive seasonality; null = none."
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        if self.damped_trend and not self.trend:
            raise ValueError("damped_trend requires trend")
        _need_rows(info, max(MIN_TRAIN_ROWS, 3 * (self.seasonal_periods or 0)), "exponential smoothing")
        return self


Engine = Literal["statsforecast", "statsmodels"]


class ArimaParams(Params):
    p: int = Field(1, ge=0, le=10, description="Autoregressive order.")
    d: int = Field(1, ge=0, le=3, description="Differencing order (of the log price).")
    q: int = Field(1, ge=0, le=10, description="Moving-average order.")
    include_mean: bool = Field(True, description="Estimate a mean when d = 0 (ignored when d > 0).")
    auto: bool = Field(False, description="Choose the orders by AIC (statsforecast AutoARIMA); p, d, q ignored.")
    max_p: int = Field(5, ge=0, le=8, description="Largest p tried when auto.")
    max_q: int = Field(5, ge=0, le=8, description="Largest q tried when auto.")
    max_d: int = Field(2, ge=0, le=2, description="Largest d tried when auto.")
    engine: Engine = Field(
        "statsforecast",
        description="Likelihood optimiser. Both give statsmodels-compatible parameters; statsforecast is faster.",
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        if self.auto and self.engine != "statsforecast":
            raise ValueError("automatic order selection runs on the statsforecast engine")
        _need_rows(info, max(MIN_TRAIN_ROWS, 3 * (self.p + self.d + self.q + 1)), "ARIMA")
        return self


class SarimaParams(ArimaParams):
    P: int = Field(1, ge=0, le=3, description="Seasonal autoregressive order.")
    D: int = Field(0, ge=0, le=2, description="Seasonal differencing order.")
    Q: int = Field(1, ge=0, le=3, description="Seasonal moving-average order.")
    season_length: int = Field(7, ge=2, le=400, description="Bars per season (7 for daily data, 24 hourly).")
    max_P: int = Field(1, ge=0, le=2, description="Largest P tried when auto.")
    max_Q: int = Field(1, ge=0, le=2, description="Largest Q tried when auto.")

    @model_validator(mode="after")
    def _season_fits(self, info: ValidationInfo) -> Self:
        _need_rows(info, 3 * self.season_length * (1 + self.D) + self.d + 1, "SARIMA")
        return self


class SarimaxParams(ArimaParams):
    """ARIMA (optionally seasonal) with exogenous regressors: the indicator features, lagged by h bars."""

    P: int = Field(0, ge=0, le=3, description="Seasonal autoregressive order.")
    D: int = Field(0, ge=0, le=2, description="Seasonal differencing order.")
    Q: int = Field(0, ge=0, le=3, description="Seasonal moving-average order.")
    season_length: int | None = Field(None, ge=2, le=400, description="Bars per season; null = no season.")
    max_P: int = Field(1, ge=0, le=2, description="Largest P tried when auto (seasonal only).")
    max_Q: int = Field(1, ge=0, le=2, description="Largest Q tried when auto (seasonal only).")
    engine: Engine = Field(
        "statsmodels",
        description="Likelihood optimiser: statsmodels SARIMAX (exact MLE) or statsforecast (faster).",
    )

    @model_validator(mode="after")
    def _season_fits(self, info: ValidationInfo) -> Self:
        if self.season_length is None and (self.P or self.D or self.Q):
            raise ValueError("seasonal orders need season_length")
        if self.season_length is not None:
            _need_rows(info, 3 * self.season_length * (1 + self.D) + self.d + 1, "SARIMAX")
        return self


# --- torch ----------------------------------------------------------------------------------------------


class TorchParams(Params):
    epochs: int = Field(50, ge=1, le=500, description="Maximum passes over the training rows.")
    batch_size: int = Field(64, ge=8, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1.0, description="Adam step size.")
    weight_decay: float = Field(0.0, ge=0, le=0.1, description="L2 penalty (AdamW).")
    dropout: float = Field(0.0, ge=0, le=0.5)
    patience: int = Field(5, ge=1, le=100, description="Epochs without validation improvement before stopping.")
    validation_fraction: float = Field(
        0.2, ge=0.05, le=0.5, description="Tail of the training window used for early stopping and intervals."
    )
    device: Device = Field("auto", description="auto = CUDA when available, else CPU.")


class RecurrentParams(TorchParams):
    sequence_length: int = Field(32, ge=2, le=512, description="Bars of feature history fed to the network.")
    hidden_size: int = Field(32, ge=4, le=512)
    num_layers: int = Field(1, ge=1, le=4)

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        _, horizon = _context(info)
        _need_rows(info, self.sequence_length + horizon + 2 * MIN_TRAIN_ROWS, "a sequence of this length")
        return self


class DenseParams(TorchParams):
    hidden_layers: list[int] = Field(
        default_factory=lambda: [64, 32], min_length=1, max_length=4, description="Units per hidden layer."
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        if any(not 4 <= units <= 1024 for units in self.hidden_layers):
            raise ValueError("hidden layers need between 4 and 1024 units")
        _, horizon = _context(info)
        _need_rows(info, horizon + 2 * MIN_TRAIN_ROWS, "the dense network")
        return self


# --- scikit-learn ---------------------------------------------------------------------------------------


class SklearnParams(Params):
    @model_validator(mode="after")
    def _enough(self, info: ValidationInfo) -> Self:
        _, horizon = _context(info)
        _need_rows(info, horizon + 2 * MIN_TRAIN_ROWS, "this model")
        return self


class RegressorParams(SklearnParams):
    calibration_fraction: float = Field(
        0.2,
        ge=0.05,
        le=0.5,
        description="Tail of the training window held out of the fit to calibrate intervals (split conformal).",
    )


class LinearParams(RegressorParams):
    """Ordinary least squares on the standardised features."""


class PolynomialRidgeParams(RegressorParams):
    degree: int = Field(2, ge=2, le=4, description="Polynomial degree of the feature expansion.")
    alpha: float = Field(1.0, ge=1e-8, le=1e6, description="Ridge penalty.")


class RandomForestParams(RegressorParams):
    n_estimators: int = Field(100, ge=1, le=2000, description="Number of trees.")
    max_depth: int | None = Field(8, ge=1, le=64, description="Maximum tree depth; null = unlimited.")
    min_samples_leaf: int = Field(5, ge=1, le=10_000)
    max_features: float = Field(1.0, gt=0, le=1.0, description="Fraction of features tried at each split.")


class HistGradientBoostingParams(RegressorParams):
    max_iter: int = Field(200, ge=1, le=5000, description="Boosting iterations.")
    learning_rate: float = Field(0.05, gt=0, le=1.0)
    max_depth: int | None = Field(None, ge=1, le=64)
    max_leaf_nodes: int = Field(31, ge=2, le=4096)
    min_samples_leaf: int = Field(20, ge=1, le=10_000)
    l2_regularization: float = Field(0.0, ge=0, le=1e4)


class SvrParams(RegressorParams):
    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = "rbf"
    C: float = Field(1.0, gt=0, le=1e4, description="Inverse regularisation strength.")
    epsilon: float = Field(0.1, ge=0, le=10, description="Insensitive band, in standardised target units.")
    gamma: Literal["scale", "auto"] = "scale"

    @model_validator(mode="after")
    def _size(self, info: ValidationInfo) -> Self:
        n_rows, _ = _context(info)
        if n_rows is not None and n_rows > SVR_MAX_ROWS:
            raise ValueError(f"SVR scales quadratically; use at most {SVR_MAX_ROWS} bars (got {n_rows})")
        return self


class KnnParams(RegressorParams):
    n_neighbors: int = Field(10, ge=1, le=500)
    weights: Literal["uniform", "distance"] = "uniform"

    @model_validator(mode="after")
    def _size(self, info: ValidationInfo) -> Self:
        _need_rows(info, 2 * self.n_neighbors + MIN_TRAIN_ROWS, "kNN with this many neighbours")
        return self


class LogisticParams(SklearnParams):
    C: float = Field(1.0, gt=0, le=1e4, description="Inverse regularisation strength.")
    max_iter: int = Field(1000, ge=10, le=100_000)


class GaussianNbParams(SklearnParams):
    var_smoothing: float = Field(1e-9, gt=0, le=1.0)


# --- reinforcement learning -----------------------------------------------------------------------------


class QLearningParams(Params):
    episodes: int = Field(50, ge=1, le=2000, description="Passes over the training window.")
    alpha: float = Field(0.1, gt=0, le=1.0, description="Learning rate of the Q update.")
    gamma: float = Field(0.9, ge=0, lt=1.0, description="Discount factor.")
    epsilon: float = Field(0.2, ge=0, le=1.0, description="Exploration rate of the first episode.")
    epsilon_decay: float = Field(0.95, gt=0, le=1.0, description="Multiplier applied after each episode.")
    bins: int = Field(3, ge=2, le=10, description="Quantile bins per state feature (fitted on training data).")
    state_features: list[str] = Field(
        default_factory=lambda: ["rsi_14", "macd_hist_12_26_9", "ret_1"],
        min_length=1,
        max_length=4,
        description="Feature columns that define the state (names as produced by the feature config).",
    )
    allow_short: bool = Field(False, description="Allow a -1 position; otherwise flat or long.")
    fee_bps: float = Field(10.0, ge=0, le=1000, description="Cost per unit of position change, basis points.")

    @model_validator(mode="after")
    def _states(self, info: ValidationInfo) -> Self:
        if self.bins ** len(self.state_features) > 100_000:
            raise ValueError("too many discrete states (bins ** features > 100000)")
        _need_rows(info, 2 * MIN_TRAIN_ROWS, "Q-learning")
        return self


# --- prophet ----------------------------------------------------------------------------------------------


class ProphetParams(Params):
    changepoint_prior_scale: float = Field(0.05, gt=0, le=10)
    seasonality_prior_scale: float = Field(10.0, gt=0, le=100)
    weekly_seasonality: bool = True
    yearly_seasonality: bool = False
    daily_seasonality: bool = False
