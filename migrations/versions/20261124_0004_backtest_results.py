"""backtest results: the seed's ``backtests`` table gains what a stored result needs; ``backtest_trades``.

The new ``backtests`` columns are NOT NULL without a server default (a result has no sensible default name,
strategy or fingerprint). Nothing wrote to the seed's table before this revision, so it is empty; SQLite gets
a batch "move and copy" of it, which is safe here because no table references ``backtests`` yet
(``backtest_trades`` is created afterwards).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import aaiti.core.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    "name",
    "kind",
    "strategy",
    "strategy_params",
    "config",
    "run_options",
    "timeframe",
    "range_start",
    "range_end",
    "engine",
    "bars",
    "num_trades",
    "data_sources",
    "fingerprint",
    "equity_curve",
    "drawdown_curve",
    "benchmark_curve",
    "robustness",
    "job_id",
)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("backtests", schema=None, recreate="auto") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=120), nullable=False))
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False))
        batch_op.add_column(sa.Column("strategy", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("strategy_params", _json(), nullable=False))
        batch_op.add_column(sa.Column("config", _json(), nullable=False))
        batch_op.add_column(sa.Column("run_options", _json(), nullable=False))
        batch_op.add_column(sa.Column("timeframe", sa.String(length=8), nullable=False))
        batch_op.add_column(sa.Column("range_start", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False))
        batch_op.add_column(sa.Column("range_end", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False))
        batch_op.add_column(sa.Column("engine", sa.String(length=16), nullable=False))
        batch_op.add_column(sa.Column("bars", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("num_trades", sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column("data_sources", _json(), nullable=False))
        batch_op.add_column(sa.Column("fingerprint", _json(), nullable=False))
        batch_op.add_column(sa.Column("equity_curve", _json(), nullable=False))
        batch_op.add_column(sa.Column("drawdown_curve", _json(), nullable=False))
        batch_op.add_column(sa.Column("benchmark_curve", _json(), nullable=True))
        batch_op.add_column(sa.Column("robustness", _json(), nullable=True))
        batch_op.add_column(sa.Column("job_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_backtests_job_id_jobs"), "jobs", ["job_id"], ["id"], ondelete="SET NULL")
        batch_op.create_unique_constraint("uq_backtests_job_id", ["job_id"])
        batch_op.create_check_constraint(
            op.f("ck_backtests_kind"), "kind IN ('single', 'walk_forward', 'monte_carlo', 'sweep')"
        )
        batch_op.create_check_constraint(op.f("ck_backtests_bars_positive"), "bars > 0")
        batch_op.create_check_constraint(op.f("ck_backtests_num_trades_not_negative"), "num_trades >= 0")
        batch_op.create_index("idx_backtests_user_id_created_at", ["user_id", "created_at"], unique=False)

    op.create_table(
        "backtest_trades",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("backtest_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("qty", sa.Float(), nullable=False),
        sa.Column("entry_time", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entry_bar", sa.Integer(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("entry_reason", sa.String(length=16), nullable=False),
        sa.Column("exit_time", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exit_bar", sa.Integer(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("ret", sa.Float(), nullable=False),
        sa.CheckConstraint("side IN ('long', 'short')", name=op.f("ck_backtest_trades_side")),
        sa.ForeignKeyConstraint(
            ["backtest_id"],
            ["backtests.id"],
            name=op.f("fk_backtest_trades_backtest_id_backtests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_trades")),
        sa.UniqueConstraint("backtest_id", "seq", name="uq_backtest_trades_backtest_id_seq"),
    )


def downgrade() -> None:
    op.drop_table("backtest_trades")
    with op.batch_alter_table("backtests", schema=None, recreate="auto") as batch_op:
        batch_op.drop_index("idx_backtests_user_id_created_at")
        batch_op.drop_constraint(op.f("ck_backtests_num_trades_not_negative"), type_="check")
        batch_op.drop_constraint(op.f("ck_backtests_bars_positive"), type_="check")
        batch_op.drop_constraint(op.f("ck_backtests_kind"), type_="check")
        batch_op.drop_constraint("uq_backtests_job_id", type_="unique")
        batch_op.drop_constraint(op.f("fk_backtests_job_id_jobs"), type_="foreignkey")
        for name in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
