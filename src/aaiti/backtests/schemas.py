"""Bodies of /api/backtests.

Times in requests are aware datetimes (a naive one is refused: it names no instant). A run covers the bars whose
**open** time lies in ``[start, end)``. Money in responses: capital as exact decimal strings; metrics, series and
trade values as floats (analytics).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from aaiti.trading.candles import TIMEFRAME_MS
from aaiti.trading.engine import BacktestConfig

RunKind = Literal["single", "walk_forward", "monte_carlo", "sweep"]
EngineName = Literal["auto", "vectorized", "event"]
Timeframe = Literal["5m", "15m", "30m", "1h", "4h", "1d"]
# Strict members in this order, so JSON ``true`` stays a bool and ``5`` an int (a lax union turns true into 1).
GridValue = Annotated[StrictBool | StrictInt | StrictFloat | StrictStr, Field(union_mode="left_to_right")]
SymbolName = Annotated[str, Field(min_length=1, max_length=24)]
SourceName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_.:-]*$")]
#: Nothing tradable predates 2009.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
MAX_SYMBOLS = 10
MAX_GRID_VALUES = 100

assert set(TIMEFRAME_MS) == {"5m", "15m", "30m", "1h", "4h", "1d"}, "keep Timeframe in step with the kernel"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


Grid = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[list[GridValue], Field(min_length=1, max_length=100)]],
    Field(min_length=1, max_length=8, description="Parameter name -> values to try (the cartesian product runs)"),
]


class SweepSpec(_In):
    grid: Grid
    metric: str = Field("sharpe", max_length=64, description="Default sort of the results table")
    descending: bool = True


class WalkForwardSpec(_In):
    grid: Grid
    train_bars: int = Field(ge=2, le=1_000_000, description="Bars in each in-sample (training) window")
    test_bars: int = Field(ge=1, le=1_000_000, description="Bars in each out-of-sample window")
    step_bars: int | None = Field(None, ge=1, le=1_000_000, description="Advance per window (default test_bars)")
    anchored: bool = Field(False, description="Training windows all start at the first bar")
    metric: str = Field("sharpe", max_length=64, description="Metric optimised in-sample")
    maximize: bool = True


class MonteCarloSpec(_In):
    method: Literal["trade_reshuffle", "trade_bootstrap", "return_block_bootstrap"] = "return_block_bootstrap"
    n_sims: int = Field(1000, ge=1, le=10_000)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Same seed, same bands")
    block_days: int = Field(5, ge=1, le=365, description="Block length of the return bootstrap")


#: Bars between two refits of a walk-forward refit: fewer would refit nearly every bar for little gain.
MIN_REFIT_EVERY = 5
#: Refits one model-driven run may do (each is a full fit of the model's algorithm in the worker).
MAX_REFITS = 100


class ForecastOptions(_In):
    """How a model's forecasts are made without seeing the future (see docs/backtests.md)."""

    policy: Literal["after_training_window", "walk_forward_refit"] = Field(
        "after_training_window",
        description="after_training_window: the stored version, only for bars after its training window; "
        "walk_forward_refit: the model's algorithm and spec refitted on past bars of the run every refit_every bars",
    )
    refit_every: int = Field(20, ge=MIN_REFIT_EVERY, le=1_000_000, description="Bars between refits (refit policy)")
    train_bars: int = Field(
        250, ge=60, le=1_000_000, description="Bars of the run before the first refit; the rolling window's length"
    )
    window: Literal["expanding", "rolling"] = Field(
        "expanding", description="Refit on every past bar of the run (expanding) or the last train_bars (rolling)"
    )


class BacktestIn(_In):
    name: str | None = Field(None, min_length=1, max_length=120)
    symbols: list[SymbolName] = Field(min_length=1, max_length=MAX_SYMBOLS, description="e.g. ['BTC'] or ['BTC-USD']")
    timeframe: Timeframe
    start: AwareDatetime
    end: AwareDatetime
    source: SourceName | None = Field(
        None, description="Pin a candle source (e.g. 'bundled:bitstamp', 'coingecko', 'csv'); default: best coverage"
    )
    strategy: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    config: BacktestConfig = Field(default_factory=BacktestConfig)
    engine: EngineName = "auto"
    kind: RunKind = "single"
    sweep: SweepSpec | None = None
    walk_forward: WalkForwardSpec | None = None
    monte_carlo: MonteCarloSpec | None = None
    periods_per_year: float = Field(365.0, gt=0.0, le=1_000_000.0, description="Annualisation of daily returns")
    risk_free_rate: float = Field(0.0, ge=-0.5, le=1.0, description="Annual risk-free rate for Sharpe/Sortino/alpha")
    model_id: uuid.UUID | None = Field(
        None, description="A trained model of yours that drives a model-driven strategy (e.g. forecast_threshold)"
    )
    model_version: int | None = Field(None, ge=1, description="The model version to use (default: the latest)")
    forecast: ForecastOptions | None = Field(None, description="Forecast policy of a model-driven run")

    @model_validator(mode="after")
    def _consistent(self) -> BacktestIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.model_version is not None or self.forecast is not None) and self.model_id is None:
            raise ValueError("model_version or forecast given without model_id")
        if self.start < EARLIEST:
            raise ValueError("start is before 2009-01-01: there is no crypto market data that old")
        specs = {"sweep": self.sweep, "walk_forward": self.walk_forward, "monte_carlo": self.monte_carlo}
        for name, spec in specs.items():
            if spec is not None and name != self.kind:
                raise ValueError(f"'{name}' settings given for a run of kind '{self.kind}'")
        if self.kind in ("sweep", "walk_forward") and specs[self.kind] is None:
            raise ValueError(f"a run of kind '{self.kind}' needs its '{self.kind}' settings (at least a grid)")
        if self.kind == "monte_carlo" and self.monte_carlo is None:
            self.monte_carlo = MonteCarloSpec()
        return self


# ----------------------------------------------------------------------------------------------------- responses


class Links(BaseModel):
    job: str
    backtest: str


class BacktestSubmitted(BaseModel):
    job_id: uuid.UUID
    backtest_id: uuid.UUID = Field(description="The id the result will have once the job succeeds")
    status: str
    bars: int
    links: Links


class MetricOut(BaseModel):
    value: float | None
    reason: str | None = None
    unit: str = ""


class Series(BaseModel):
    ts: list[int] = Field(description="Bar open times, epoch ms UTC")
    values: list[float]


class TradeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    symbol: str
    side: str
    qty: float
    entry_time: datetime
    entry_bar: int
    entry_price: float
    entry_reason: str
    exit_time: datetime
    exit_bar: int
    exit_price: float
    exit_reason: str
    fees: float
    pnl: float
    ret: float = Field(serialization_alias="return", description="pnl / (qty * entry_price)")


class TradePage(BaseModel):
    items: list[TradeOut]
    total: int
    limit: int
    offset: int


class BacktestSummary(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    strategy: str
    strategy_params: dict[str, Any]
    symbols: list[str]
    timeframe: str
    range_start: datetime
    range_end: datetime
    engine: str
    bars: int
    num_trades: int
    initial_capital: Decimal
    final_capital: Decimal
    total_return: float | None
    headline: dict[str, MetricOut]
    fingerprint: str = Field(description="The combined fingerprint hash")
    job_id: uuid.UUID | None
    created_at: datetime


class BacktestPage(BaseModel):
    items: list[BacktestSummary]
    total: int
    limit: int
    offset: int


class BacktestDetail(BacktestSummary):
    metrics: dict[str, MetricOut]
    config: dict[str, Any]
    run_options: dict[str, Any]
    data_sources: list[dict[str, Any]]
    fingerprint_parts: dict[str, Any]
    equity: Series
    drawdown: Series
    benchmark: Series | None
    robustness: dict[str, Any] | None
    trades_summary: dict[str, Any] | None
    trades: TradePage


class RunRow(BaseModel):
    rank: int
    params: dict[str, Any]
    metrics: dict[str, MetricOut] | None
    in_sample: dict[str, MetricOut] | None = None
    window: dict[str, Any] | None = None
    error: str | None = None


class RunPage(BaseModel):
    kind: str
    sort: str
    order: Literal["asc", "desc"]
    items: list[RunRow]
    total: int
    limit: int
    offset: int


class CompareItem(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    strategy: str
    strategy_params: dict[str, Any]
    symbols: list[str]
    timeframe: str
    range_start: datetime
    range_end: datetime
    config: dict[str, Any]
    fingerprint: str
    equity: Series


class CompareOut(BaseModel):
    items: list[CompareItem]
    metrics: dict[str, list[MetricOut]] = Field(description="Metric name -> one value per item, in item order")


class StrategyInfo(BaseModel):
    name: str
    title: str
    description: str
    uses_forecast: bool
    params_schema: dict[str, Any]


class Catalog(BaseModel):
    strategies: list[StrategyInfo]
    config_schema: dict[str, Any] = Field(description="JSON Schema of the execution config (BacktestConfig)")
    run_kinds: dict[str, dict[str, Any]] = Field(description="Run kind -> JSON Schema of its settings")
    timeframes: list[str]
    sortable_metrics: list[str]
    limits: dict[str, int]
