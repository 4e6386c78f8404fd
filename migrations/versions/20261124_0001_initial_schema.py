"""initial schema: the seed's tables plus refresh_tokens and jobs; audit_logs is append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 12:34:18.812903
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import aaiti.core.db.base

AUDIT_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs "
    "BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END",
    "CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs "
    "BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END",
)
AUDIT_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_logs is append-only'; END; $$ LANGUAGE plpgsql"
)
AUDIT_PG_TRIGGER = (
    "CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only()"
)


def _create_audit_guards() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in AUDIT_SQLITE_TRIGGERS:
            op.execute(statement)
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_PG_FUNCTION)
        op.execute(AUDIT_PG_TRIGGER)


def _drop_audit_guards() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_logs_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_logs_no_delete")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs")
        op.execute("DROP FUNCTION IF EXISTS audit_logs_append_only()")


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="trader", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("token_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'trader', 'viewer')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("idx_users_email", ["email"], unique=False)

    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("timestamp", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_logs_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.create_index("idx_audit_logs_timestamp", ["timestamp"], unique=False)
        batch_op.create_index("idx_audit_logs_user_id", ["user_id"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("cancel_requested", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f("ck_jobs_status")
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_jobs_progress")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("idx_jobs_owner_id_created_at", ["owner_id", "created_at"], unique=False)
        batch_op.create_index("idx_jobs_status", ["status"], unique=False)

    op.create_table(
        "ml_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("algorithm_type", sa.String(length=64), nullable=False),
        sa.Column("target_timeframe", sa.String(length=8), nullable=False),
        sa.Column(
            "symbols",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("training_status", sa.String(length=16), server_default="untrained", nullable=False),
        sa.Column(
            "performance_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_trained", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_ml_models_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_models")),
    )
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.create_index("idx_ml_models_algorithm_type", ["algorithm_type"], unique=False)
        batch_op.create_index("idx_ml_models_user_id", ["user_id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index("idx_refresh_tokens_family_id", ["family_id"], unique=False)
        batch_op.create_index("idx_refresh_tokens_user_id", ["user_id"], unique=False)

    op.create_table(
        "trading_bots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="stopped", nullable=False),
        sa.Column(
            "configuration",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "performance_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_active", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_trading_bots_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_bots")),
    )
    with op.batch_alter_table("trading_bots", schema=None) as batch_op:
        batch_op.create_index("idx_trading_bots_status", ["status"], unique=False)
        batch_op.create_index("idx_trading_bots_user_id", ["user_id"], unique=False)

    op.create_table(
        "backtests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=True),
        sa.Column("bot_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "symbols",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("initial_capital", aaiti.core.db.base.DecimalText(length=64), nullable=False),
        sa.Column("final_capital", aaiti.core.db.base.DecimalText(length=64), nullable=False),
        sa.Column("total_return", sa.Float(), nullable=True),
        sa.Column(
            "performance_metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "trades_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["trading_bots.id"], name=op.f("fk_backtests_bot_id_trading_bots")),
        sa.ForeignKeyConstraint(["model_id"], ["ml_models.id"], name=op.f("fk_backtests_model_id_ml_models")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_backtests_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtests")),
    )
    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.create_index("idx_backtests_model_id", ["model_id"], unique=False)
        batch_op.create_index("idx_backtests_user_id", ["user_id"], unique=False)

    op.create_table(
        "predictions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("prediction_value", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column(
            "features",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("timestamp", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["ml_models.id"], name=op.f("fk_predictions_model_id_ml_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index("idx_predictions_model_id", ["model_id"], unique=False)
        batch_op.create_index("idx_predictions_symbol", ["symbol"], unique=False)
        batch_op.create_index("idx_predictions_timestamp", ["timestamp"], unique=False)

    _create_audit_guards()


def downgrade() -> None:
    _drop_audit_guards()
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("idx_predictions_timestamp")
        batch_op.drop_index("idx_predictions_symbol")
        batch_op.drop_index("idx_predictions_model_id")

    op.drop_table("predictions")
    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.drop_index("idx_backtests_user_id")
        batch_op.drop_index("idx_backtests_model_id")

    op.drop_table("backtests")
    with op.batch_alter_table("trading_bots", schema=None) as batch_op:
        batch_op.drop_index("idx_trading_bots_user_id")
        batch_op.drop_index("idx_trading_bots_status")

    op.drop_table("trading_bots")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("idx_refresh_tokens_user_id")
        batch_op.drop_index("idx_refresh_tokens_family_id")

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("ml_models", schema=None) as batch_op:
        batch_op.drop_index("idx_ml_models_user_id")
        batch_op.drop_index("idx_ml_models_algorithm_type")

    op.drop_table("ml_models")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("idx_jobs_status")
        batch_op.drop_index("idx_jobs_owner_id_created_at")

    op.drop_table("jobs")
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index("idx_audit_logs_user_id")
        batch_op.drop_index("idx_audit_logs_timestamp")

    op.drop_table("audit_logs")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("idx_users_email")

    op.drop_table("users")
    op.drop_table("settings")
