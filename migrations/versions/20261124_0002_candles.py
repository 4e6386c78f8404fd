"""candles: stored OHLCV history (bundled files, CoinGecko backfills, CSV imports).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 13:00:11.404595
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aaiti.core.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("open_time", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=True),
        sa.Column("granularity_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("granularity_ms > 0", name=op.f("ck_candles_granularity_positive")),
        sa.CheckConstraint("low <= high", name=op.f("ck_candles_low_le_high")),
        sa.CheckConstraint("open > 0 AND high > 0 AND low > 0 AND close > 0", name=op.f("ck_candles_positive_prices")),
        sa.CheckConstraint("volume IS NULL OR volume >= 0", name=op.f("ck_candles_volume_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candles")),
        sa.UniqueConstraint("source", "symbol", "timeframe", "open_time", name="uq_candles_source_symbol_tf_time"),
    )
    with op.batch_alter_table("candles", schema=None) as batch_op:
        batch_op.create_index(
            "idx_candles_symbol_timeframe_open_time", ["symbol", "timeframe", "open_time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("candles", schema=None) as batch_op:
        batch_op.drop_index("idx_candles_symbol_timeframe_open_time")
    op.drop_table("candles")
