"""Migrations: upgrade on an empty file and on PostgreSQL, a down/up round trip, and no drift from the models."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from tests.conftest import PG_URL, pg_available

from aaiti.cli import alembic_config
from aaiti.core.db.engine import create_engine

SEED_TABLES = {"users", "ml_models", "predictions", "trading_bots", "backtests", "settings", "audit_logs"}
SEED_INDEXES = {
    "idx_users_email",
    "idx_ml_models_user_id",
    "idx_ml_models_algorithm_type",
    "idx_predictions_model_id",
    "idx_predictions_symbol",
    "idx_predictions_timestamp",
    "idx_trading_bots_user_id",
    "idx_trading_bots_status",
    "idx_backtests_user_id",
    "idx_backtests_model_id",
    "idx_audit_logs_user_id",
    "idx_audit_logs_timestamp",
}


def _cfg(url: str) -> Config:
    cfg = alembic_config(url)
    assert isinstance(cfg, Config)
    return cfg


def test_sqlite_upgrade_roundtrip_and_no_drift(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    cfg = _cfg(f"sqlite+aiosqlite:///{db}")
    command.upgrade(cfg, "head")
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    con.close()
    assert SEED_TABLES | {"refresh_tokens", "jobs"} <= tables
    assert indexes >= SEED_INDEXES
    command.check(cfg)  # raises if the models and the migrations differ
    command.downgrade(cfg, "base")
    con = sqlite3.connect(db)
    left = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert left == {"alembic_version"}
    command.upgrade(cfg, "head")
    command.check(cfg)


def test_audit_log_is_append_only_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    command.upgrade(_cfg(f"sqlite+aiosqlite:///{db}"), "head")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO audit_logs (id, action, outcome, timestamp, seq, prev_hash, row_hash) "
        "VALUES ('x1', 'test', 'success', '2026-01-01', 1, 'p', 'r')"
    )
    con.commit()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit_logs SET action='forged'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit_logs")
    con.close()


@pytest.fixture(scope="module")
def pg() -> str:
    if not pg_available():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (database 'test'); the PG leg needs it")
    cfg = _cfg(PG_URL)
    command.downgrade(cfg, "base")
    return PG_URL


def test_postgres_upgrade_roundtrip_no_drift_and_append_only(pg: str) -> None:
    cfg = _cfg(pg)
    command.upgrade(cfg, "head")
    command.check(cfg)

    async def exercise() -> None:
        engine = create_engine(pg)
        try:
            async with engine.begin() as conn:
                names = {
                    r[0] for r in await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
                }
                assert names >= SEED_TABLES
                await conn.execute(
                    text(
                        "INSERT INTO audit_logs (id, action, outcome, timestamp, seq, prev_hash, row_hash) "
                        "VALUES (gen_random_uuid(), 'test', 'success', now(), 1, 'p', 'r')"
                    )
                )
                col = (
                    await conn.execute(
                        text(
                            "SELECT data_type FROM information_schema.columns "
                            "WHERE table_name='users' AND column_name='created_at'"
                        )
                    )
                ).scalar_one()
                assert col == "timestamp with time zone"
            for statement in ("UPDATE audit_logs SET action='x'", "DELETE FROM audit_logs"):
                with pytest.raises(Exception, match="append-only"):
                    async with engine.begin() as conn:
                        await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(exercise())
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    command.check(cfg)
    command.downgrade(cfg, "base")
