"""The ``candles`` table: stored OHLCV history from every source (bundled files, CoinGecko backfills, CSV imports).

One row per (source, symbol, timeframe, open time). ``open_time`` is the candle's **open** time, UTC. Prices are
floats (analytics data, never money in a ledger). ``volume`` is NULL when the source has none (CoinGecko's OHLC
and price points), never 0. ``granularity_ms`` is the spacing of the data the row was built from: a ``1d`` row
aggregated from hourly CoinGecko points has 3 600 000, a ``1d`` row from a daily exchange file 86 400 000, so a
series never claims to be finer than what was received.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aaiti.core.db.base import Base, BigIntPK, UTCDateTime, utcnow


class Candle(Base):
    __tablename__ = "candles"
    __table_args__ = (
        UniqueConstraint("source", "symbol", "timeframe", "open_time", name="uq_candles_source_symbol_tf_time"),
        Index("idx_candles_symbol_timeframe_open_time", "symbol", "timeframe", "open_time"),
        CheckConstraint("open > 0 AND high > 0 AND low > 0 AND close > 0", name="positive_prices"),
        CheckConstraint("low <= high", name="low_le_high"),
        CheckConstraint("volume IS NULL OR volume >= 0", name="volume_not_negative"),
        CheckConstraint("granularity_ms > 0", name="granularity_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40), nullable=False)
    symbol: Mapped[str] = mapped_column(String(16), nullable=False)
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    open_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    open: Mapped[float] = mapped_column(Float, nullable=False)
    high: Mapped[float] = mapped_column(Float, nullable=False)
    low: Mapped[float] = mapped_column(Float, nullable=False)
    close: Mapped[float] = mapped_column(Float, nullable=False)
    volume: Mapped[float | None] = mapped_column(Float, nullable=True)
    granularity_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
