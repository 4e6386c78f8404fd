"""audit chain: ``audit_logs`` gains ``seq``, ``prev_hash`` and ``row_hash``; ``audit_chain_head`` holds the end.

Existing rows are chained in (timestamp, id) order with the same canonical form the application uses
(``aaiti.core.audit.canonical_row``). The append-only triggers are dropped around the backfill and recreated
afterwards (SQLite's batch "move and copy", needed for NOT NULL and the unique constraint, drops them anyway).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import aaiti.core.db.base
from aaiti.core.audit import GENESIS_HASH, HEAD_ID, canonical_row, chain_hash

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 1000

# The guards of revision 0001, mirrored (a migration must not change when an older one is edited).
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


AUDIT = sa.table(
    "audit_logs",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("resource_type", sa.String()),
    sa.column("resource_id", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("details", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")),
    sa.column("ip_address", sa.String()),
    sa.column("user_agent", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("timestamp", aaiti.core.db.base.UTCDateTime(timezone=True)),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)
HEAD = sa.table("audit_chain_head", sa.column("id", sa.Integer()), sa.column("seq"), sa.column("hash"))


def _backfill() -> tuple[int, str]:
    """Chain the existing rows in (timestamp, id) order, a batch at a time; returns the last seq and hash."""
    conn = op.get_bind()
    seq, prev_hash = 0, GENESIS_HASH
    while True:
        # Rows already chained are skipped by the filter, so each batch starts where the last one ended.
        batch = conn.execute(
            sa.select(AUDIT).where(AUDIT.c.seq.is_(None)).order_by(AUDIT.c.timestamp, AUDIT.c.id).limit(BACKFILL_BATCH)
        ).all()
        for row in batch:
            seq += 1
            content = {k: v for k, v in row._mapping.items() if k not in {"seq", "prev_hash", "row_hash"}}
            row_hash = chain_hash(prev_hash, canonical_row(**{**content, "seq": seq}))
            conn.execute(
                sa.update(AUDIT).where(AUDIT.c.id == row.id).values(seq=seq, prev_hash=prev_hash, row_hash=row_hash)
            )
            prev_hash = row_hash
        if len(batch) < BACKFILL_BATCH:
            return seq, prev_hash


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_single_row")),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_audit_chain_head_seq_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    _drop_audit_guards()
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    last_seq, last_hash = _backfill()
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_audit_logs_seq"), ["seq"])
    _create_audit_guards()
    op.execute(sa.insert(HEAD).values(id=HEAD_ID, seq=last_seq, hash=last_hash))


def downgrade() -> None:
    _drop_audit_guards()
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_audit_logs_seq"), type_="unique")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    _create_audit_guards()
    op.drop_table("audit_chain_head")
