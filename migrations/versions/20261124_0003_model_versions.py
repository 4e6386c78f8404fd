"""model versions: one row per trained artefact; training state on ml_models; forecast paths and actuals on
predictions.

Columns are added with plain ``ALTER TABLE ... ADD/DROP COLUMN`` (SQLite >= 3.35 does both natively) rather
than batch mode: a batch "move and copy" of ``ml_models`` would drop the table that ``predictions`` references
with ``ON DELETE CASCADE`` while foreign keys are on, deleting every prediction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import aaiti.core.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


ML_MODEL_COLUMNS = ("training_spec", "training_job_id", "training_error")
PREDICTION_COLUMNS = (
    "version",
    "horizon",
    "origin_time",
    "target_time",
    "lower_value",
    "upper_value",
    "forecast",
    "actual_value",
    "resolved_at",
    "outcome",
)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("artifact_path", sa.String(length=500), nullable=False),
        sa.Column("artifact_format", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("training_window", _json(), nullable=False),
        sa.Column("test_window", _json(), nullable=True),
        sa.Column("data_window", _json(), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["ml_models.id"], name=op.f("fk_model_versions_model_id_ml_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )

    op.add_column("ml_models", sa.Column("training_spec", _json(), nullable=True))
    op.add_column("ml_models", sa.Column("training_job_id", sa.Uuid(), nullable=True))
    op.add_column("ml_models", sa.Column("training_error", sa.Text(), nullable=True))

    op.add_column("predictions", sa.Column("version", sa.Integer(), nullable=True))
    op.add_column("predictions", sa.Column("horizon", sa.Integer(), nullable=True))
    op.add_column("predictions", sa.Column("origin_time", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column("predictions", sa.Column("target_time", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column("predictions", sa.Column("lower_value", sa.Float(), nullable=True))
    op.add_column("predictions", sa.Column("upper_value", sa.Float(), nullable=True))
    op.add_column("predictions", sa.Column("forecast", _json(), nullable=True))
    op.add_column("predictions", sa.Column("actual_value", sa.Float(), nullable=True))
    op.add_column("predictions", sa.Column("resolved_at", aaiti.core.db.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column("predictions", sa.Column("outcome", _json(), nullable=True))
    op.create_index("idx_predictions_model_id_target_time", "predictions", ["model_id", "target_time"], unique=False)


def downgrade() -> None:
    op.drop_index("idx_predictions_model_id_target_time", table_name="predictions")
    for name in PREDICTION_COLUMNS:
        op.drop_column("predictions", name)
    for name in ML_MODEL_COLUMNS:
        op.drop_column("ml_models", name)
    op.drop_table("model_versions")
