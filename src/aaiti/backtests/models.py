"""The seed's ``backtests`` table (its columns kept), extended by migration 0004, and ``backtest_trades``.

A row is written only when a run has finished, in the same transaction that marks its job succeeded, with every
part of the result (metrics, chart series, trades, fingerprint): there is no "running" or partial backtest row.
Capital columns are exact decimals (SQLite NUMERIC would be a float); analytics series and trade prices are floats.
Times are UTC; trade times are bar **open** times.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, BigIntPK, DecimalText, JSONType, UTCDateTime, Uuid, new_uuid, utcnow

RUN_KINDS = ("single", "walk_forward", "monte_carlo", "sweep")


class Backtest(Base):
    __tablename__ = "backtests"
    __table_args__ = (
        Index("idx_backtests_user_id", "user_id"),
        Index("idx_backtests_model_id", "model_id"),
        Index("idx_backtests_user_id_created_at", "user_id", "created_at"),
        UniqueConstraint("job_id", name="uq_backtests_job_id"),
        CheckConstraint("kind IN ('single', 'walk_forward', 'monte_carlo', 'sweep')", name="kind"),
        CheckConstraint("bars > 0", name="bars_positive"),
        CheckConstraint("num_trades >= 0", name="num_trades_not_negative"),
    )

    # --- the seed's columns -----------------------------------------------------------------------------------
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    model_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ml_models.id"), nullable=True)
    bot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("trading_bots.id"), nullable=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), nullable=False)
    symbols: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date] = mapped_column(Date, nullable=False)
    initial_capital: Mapped[Decimal] = mapped_column(DecimalText, nullable=False)
    final_capital: Mapped[Decimal] = mapped_column(DecimalText, nullable=False)
    total_return: Mapped[float | None] = mapped_column(Float, nullable=True)
    performance_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """``{name: {"value": float | None, "reason": str | None, "unit": str}}`` from :mod:`aaiti.trading.metrics`."""
    trades_data: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    """Trade counts by symbol, side and exit reason; the trades themselves are rows of ``backtest_trades``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    # --- added by 0004 ----------------------------------------------------------------------------------------
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    strategy_params: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    """The execution config (:class:`aaiti.trading.engine.BacktestConfig`) with every default filled in."""
    run_options: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    """Kind-specific settings (grid, windows, simulations, seed) and the metric options."""
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    range_start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    range_end: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    engine: Mapped[str] = mapped_column(String(16), nullable=False)
    """The engine that ran (``vectorized`` or ``event``), after ``auto`` was resolved."""
    bars: Mapped[int] = mapped_column(Integer, nullable=False)
    num_trades: Mapped[int] = mapped_column(Integer, nullable=False)
    data_sources: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    """Per symbol: where the candles came from (source, dataset, stored timeframe, first/last bar)."""
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    equity_curve: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    """``{"ts": [...], "values": [...]}``, downsampled for charts (min/max per bucket kept)."""
    drawdown_curve: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    benchmark_curve: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    robustness: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """Walk-forward windows, Monte Carlo bands or the sweep's results table."""
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)


class BacktestTrade(Base):
    """One closed trade (or closed part of a position) of a stored backtest, in closing order (``seq``)."""

    __tablename__ = "backtest_trades"
    __table_args__ = (
        UniqueConstraint("backtest_id", "seq", name="uq_backtest_trades_backtest_id_seq"),
        CheckConstraint("side IN ('long', 'short')", name="side"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    backtest_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("backtests.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    symbol: Mapped[str] = mapped_column(String(16), nullable=False)
    side: Mapped[str] = mapped_column(String(5), nullable=False)
    qty: Mapped[float] = mapped_column(Float, nullable=False)
    entry_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    entry_bar: Mapped[int] = mapped_column(Integer, nullable=False)
    entry_price: Mapped[float] = mapped_column(Float, nullable=False)
    entry_reason: Mapped[str] = mapped_column(String(16), nullable=False)
    exit_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    exit_bar: Mapped[int] = mapped_column(Integer, nullable=False)
    exit_price: Mapped[float] = mapped_column(Float, nullable=False)
    exit_reason: Mapped[str] = mapped_column(String(16), nullable=False)
    fees: Mapped[float] = mapped_column(Float, nullable=False)
    pnl: Mapped[float] = mapped_column(Float, nullable=False)
    ret: Mapped[float] = mapped_column(Float, nullable=False)
