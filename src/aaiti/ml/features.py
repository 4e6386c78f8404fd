"""Features and targets for the forecasters.

Look-ahead rule: ``features[t]`` is computed from candles ``0..t`` only (every column is a causal
indicator or a lagged return), so a model fed ``features[t]`` at the close of bar ``t`` never sees the
future. ``tests/ml/test_ml_features.py`` proves it by perturbing bars after ``t``.

All features are scale-free (ratios, log returns, bounded oscillators) so a model trained at one price
level still applies at another. Indicators come from TA-Lib through :func:`_indicator`, the one place to
switch to ``aaiti.trading.indicators`` once the kernel exposes them.

Targets: ``log_return`` = ``log(close[t + h] / close[t])``; ``price`` = ``close[t + h]``. The last ``h``
rows have no target (NaN).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
import talib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aaiti.ml.estimators.base import TrainingData
from aaiti.trading.candles import Candles

FloatArray = npt.NDArray[np.float64]
Target = Literal["price", "log_return"]


class _Feature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RsiFeature(_Feature):
    """Wilder RSI rescaled to [-1, 1]: (RSI - 50) / 50."""

    name: Literal["rsi"] = "rsi"
    period: int = Field(14, ge=2, le=500)


class MacdFeature(_Feature):
    """MACD line, signal and histogram, each divided by the close."""

    name: Literal["macd"] = "macd"
    fast: int = Field(12, ge=2, le=500)
    slow: int = Field(26, ge=3, le=500)
    signal: int = Field(9, ge=2, le=500)

    @model_validator(mode="after")
    def _order(self) -> MacdFeature:
        if self.fast >= self.slow:
            raise ValueError("macd fast period must be shorter than slow")
        return self


class BbandsFeature(_Feature):
    """Bollinger %B (centred on 0) and band width relative to the middle band."""

    name: Literal["bbands"] = "bbands"
    period: int = Field(20, ge=2, le=500)
    nbdev: float = Field(2.0, gt=0, le=10)


class SmaRatioFeature(_Feature):
    """log(close / SMA(period))."""

    name: Literal["sma_ratio"] = "sma_ratio"
    period: int = Field(20, ge=2, le=1000)


class EmaRatioFeature(_Feature):
    """log(close / EMA(period))."""

    name: Literal["ema_ratio"] = "ema_ratio"
    period: int = Field(20, ge=2, le=1000)


class AtrFeature(_Feature):
    """Average true range divided by the close."""

    name: Literal["atr"] = "atr"
    period: int = Field(14, ge=2, le=500)


class VolatilityFeature(_Feature):
    """Standard deviation of one-bar log returns over the last ``period`` bars."""

    name: Literal["volatility"] = "volatility"
    period: int = Field(20, ge=2, le=1000)


class VolumeZFeature(_Feature):
    """z-score of log volume against its last ``period`` bars."""

    name: Literal["volume_z"] = "volume_z"
    period: int = Field(20, ge=2, le=1000)


IndicatorFeature = Annotated[
    RsiFeature
    | MacdFeature
    | BbandsFeature
    | SmaRatioFeature
    | EmaRatioFeature
    | AtrFeature
    | VolatilityFeature
    | VolumeZFeature,
    Field(discriminator="name"),
]


def _default_indicators() -> list[IndicatorFeature]:
    return [RsiFeature(), MacdFeature(), BbandsFeature(), AtrFeature(), SmaRatioFeature()]


class FeatureConfig(BaseModel):
    """Which features a model sees. Defaults: 5 lagged returns, RSI, MACD, Bollinger, ATR, SMA ratio."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lags: int = Field(5, ge=0, le=100, description="Lagged one-bar log returns ret_1 (latest) .. ret_lags.")
    indicators: list[IndicatorFeature] = Field(default_factory=_default_indicators, max_length=20)

    @model_validator(mode="after")
    def _nonempty(self) -> FeatureConfig:
        if self.lags == 0 and not self.indicators:
            raise ValueError("at least one feature is needed (lags > 0 or an indicator)")
        return self

    def warmup(self) -> int:
        """Bars of history needed before every feature is defined (an upper bound)."""
        need = self.lags
        for ind in self.indicators:
            if isinstance(ind, MacdFeature):
                need = max(need, ind.slow + ind.signal)
            elif isinstance(ind, RsiFeature | AtrFeature | VolatilityFeature):
                need = max(need, ind.period + 1)
            else:
                need = max(need, ind.period)
        return need


def _indicator(name: str, candles: Candles, params: dict[str, float]) -> dict[str, FloatArray]:
    """Raw indicator outputs (TA-Lib today; to be switched to ``aaiti.trading.indicators``)."""
    close, high, low = candles.close, candles.high, candles.low
    if name == "rsi":
        return {"rsi": talib.RSI(close, timeperiod=int(params["period"]))}
    if name == "macd":
        macd, signal, hist = talib.MACD(
            close,
            fastperiod=int(params["fast"]),
            slowperiod=int(params["slow"]),
            signalperiod=int(params["signal"]),
        )
        return {"macd": macd, "signal": signal, "hist": hist}
    if name == "bbands":
        nbdev = float(params["nbdev"])
        upper, middle, lower = talib.BBANDS(close, timeperiod=int(params["period"]), nbdevup=nbdev, nbdevdn=nbdev)
        return {"upper": upper, "middle": middle, "lower": lower}
    if name == "sma":
        return {"sma": talib.SMA(close, timeperiod=int(params["period"]))}
    if name == "ema":
        return {"ema": talib.EMA(close, timeperiod=int(params["period"]))}
    if name == "atr":
        return {"atr": talib.ATR(high, low, close, timeperiod=int(params["period"]))}
    raise ValueError(f"unknown indicator {name}")


def _rolling_std(x: FloatArray, period: int) -> FloatArray:
    # STDDEV is population std over the trailing window (causal); NaN inputs stay NaN.
    return np.asarray(talib.STDDEV(x, timeperiod=period, nbdev=1.0), dtype=np.float64)


def _rolling_mean(x: FloatArray, period: int) -> FloatArray:
    return np.asarray(talib.SMA(x, timeperiod=period), dtype=np.float64)


def log_returns(close: FloatArray) -> FloatArray:
    """One-bar log returns; element 0 is NaN (no previous bar)."""
    out = np.full(close.shape, np.nan)
    out[1:] = np.diff(np.log(close))
    return out


def compute_features(candles: Candles, config: FeatureConfig) -> tuple[FloatArray, tuple[str, ...], tuple[int, ...]]:
    """Feature matrix (n x f), column names, and the indices of indicator (non-lag) columns."""
    close = candles.close
    cols: list[FloatArray] = []
    names: list[str] = []
    ret = log_returns(close)
    for lag in range(1, config.lags + 1):
        shifted = np.full(close.shape, np.nan)
        shifted[lag - 1 :] = ret[: len(ret) - lag + 1]
        cols.append(shifted)
        names.append(f"ret_{lag}")
    first_indicator = len(cols)
    for ind in config.indicators:
        if isinstance(ind, RsiFeature):
            rsi = _indicator("rsi", candles, {"period": ind.period})["rsi"]
            cols.append((rsi - 50.0) / 50.0)
            names.append(f"rsi_{ind.period}")
        elif isinstance(ind, MacdFeature):
            m = _indicator("macd", candles, {"fast": ind.fast, "slow": ind.slow, "signal": ind.signal})
            suffix = f"{ind.fast}_{ind.slow}_{ind.signal}"
            for key, label in (("macd", "macd"), ("signal", "macd_signal"), ("hist", "macd_hist")):
                cols.append(m[key] / close)
                names.append(f"{label}_{suffix}")
        elif isinstance(ind, BbandsFeature):
            b = _indicator("bbands", candles, {"period": ind.period, "nbdev": ind.nbdev})
            width = b["upper"] - b["lower"]
            with np.errstate(divide="ignore", invalid="ignore"):
                pctb = np.where(width > 0, (close - b["lower"]) / width - 0.5, 0.0)
            pctb[np.isnan(width)] = np.nan
            cols.append(pctb)
            names.append(f"bb_pctb_{ind.period}")
            cols.append(width / b["middle"])
            names.append(f"bb_width_{ind.period}")
        elif isinstance(ind, SmaRatioFeature):
            cols.append(np.log(close / _indicator("sma", candles, {"period": ind.period})["sma"]))
            names.append(f"sma_ratio_{ind.period}")
        elif isinstance(ind, EmaRatioFeature):
            cols.append(np.log(close / _indicator("ema", candles, {"period": ind.period})["ema"]))
            names.append(f"ema_ratio_{ind.period}")
        elif isinstance(ind, AtrFeature):
            cols.append(_indicator("atr", candles, {"period": ind.period})["atr"] / close)
            names.append(f"atr_{ind.period}")
        elif isinstance(ind, VolatilityFeature):
            cols.append(_rolling_std(ret, ind.period))
            names.append(f"volatility_{ind.period}")
        else:
            logv = np.log1p(np.maximum(candles.volume, 0.0))
            sd = _rolling_std(logv, ind.period)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(sd > 0, (logv - _rolling_mean(logv, ind.period)) / sd, 0.0)
            z[np.isnan(sd)] = np.nan
            cols.append(z)
            names.append(f"volume_z_{ind.period}")
    if len(set(names)) != len(names):
        raise ValueError("the feature config lists the same indicator twice")
    matrix = np.column_stack(cols).astype(np.float64) if cols else np.empty((len(close), 0))
    return matrix, tuple(names), tuple(range(first_indicator, len(cols)))


def make_target(close: FloatArray, horizon: int, kind: Target) -> FloatArray:
    """Target at each origin ``t``: the h-bar-ahead log return or price; NaN where ``t + h`` is unknown."""
    out = np.full(close.shape, np.nan)
    if horizon < len(close):
        if kind == "log_return":
            out[:-horizon] = np.log(close[horizon:] / close[:-horizon])
        else:
            out[:-horizon] = close[horizon:]
    return out


def forward_log_returns(close: FloatArray, horizon: int) -> FloatArray:
    """Matrix (n x h): column k-1 holds ``log(close[t + k] / close[t])``; NaN past the end."""
    logc = np.log(close)
    out = np.full((len(close), horizon), np.nan)
    for k in range(1, horizon + 1):
        if k < len(close):
            out[:-k, k - 1] = logc[k:] - logc[:-k]
    return out


def build_training_data(candles: Candles, config: FeatureConfig, horizon: int) -> TrainingData:
    """Compute causal features over ``candles`` and wrap them for the forecasters."""
    if len(candles) < 2:
        raise ValueError("need at least two candles")
    if np.any(candles.close <= 0) or not np.all(np.isfinite(candles.close)):
        raise ValueError("closes must be positive and finite")
    features, names, indicator_cols = compute_features(candles, config)
    valid = np.all(np.isfinite(features), axis=1)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ValueError(f"no bar has every feature defined (warm-up needs about {config.warmup()} bars)")
    # Columns are defined from their warm-up on; a later NaN (a zero close would cause one) is refused above.
    first_valid = int(idx[0])
    if not np.all(valid[first_valid:]):
        raise ValueError("features have gaps after the warm-up")
    return TrainingData(
        candles=candles,
        features=features,
        feature_names=names,
        horizon=horizon,
        first_valid=first_valid,
        indicator_columns=indicator_cols,
    )
