"""Migration 0003 on SQLite: no drift, and a down/up round trip keeps the seed's rows (the columns are added and
dropped in place; a batch copy of ``ml_models`` would cascade-delete its predictions)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from aaiti.cli import alembic_config


def _cfg(db: Path) -> Config:
    cfg = alembic_config(f"sqlite+aiosqlite:///{db}")
    assert isinstance(cfg, Config)
    return cfg


def test_0003_round_trip_keeps_models_and_predictions(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    cfg = _cfg(db)
    command.upgrade(cfg, "head")
    command.check(cfg)
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=ON")
    con.execute(
        "INSERT INTO users (id, email, password_hash, role, is_active, token_version, created_at, updated_at) "
        "VALUES ('u1', 'a@example.com', 'x', 'trader', 1, 1, '2026-01-01', '2026-01-01')"
    )
    con.execute(
        "INSERT INTO ml_models (id, user_id, name, algorithm_type, target_timeframe, symbols, parameters, "
        "training_status, created_at, training_spec) "
        "VALUES ('m1', 'u1', 'm', 'arima', '1d', '[\"BTC\"]', '{}', 'trained', '2026-01-01', '{}')"
    )
    con.execute(
        "INSERT INTO predictions (id, model_id, symbol, prediction_value, timestamp, version, forecast) "
        "VALUES ('p1', 'm1', 'BTC', 1.0, '2026-01-01', 1, '{}')"
    )
    con.execute(
        "INSERT INTO model_versions (id, model_id, version, algorithm, artifact_path, artifact_format, sha256, "
        "size, params, spec, metrics, training_window, data_fingerprint, created_at) "
        "VALUES ('v1', 'm1', 1, 'arima', 'm1/v000001.aaiti', 'aaiti-model/1', 'ab', 1, '{}', '{}', '{}', '{}', "
        "'cd', '2026-01-01')"
    )
    duplicate = (
        "INSERT INTO model_versions (id, model_id, version, algorithm, artifact_path, artifact_format, sha256, "
        "size, params, spec, metrics, training_window, data_fingerprint, created_at) "
        "VALUES ('v2', 'm1', 1, 'arima', 'x', 'y', 'ab', 1, '{}', '{}', '{}', '{}', 'cd', '2026-01-01')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        con.execute(duplicate)
    con.commit()
    con.close()

    command.downgrade(cfg, "0002")
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    columns = {r[1] for r in con.execute("PRAGMA table_info(predictions)")}
    assert "model_versions" not in tables and "forecast" not in columns
    assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 1
    assert con.execute("SELECT name FROM ml_models").fetchall() == [("m",)]
    con.close()

    command.upgrade(cfg, "head")
    command.check(cfg)
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=ON")
    assert con.execute("SELECT count(*) FROM predictions WHERE model_id='m1'").fetchone()[0] == 1
    con.execute("DELETE FROM ml_models WHERE id='m1'")
    assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 0, "predictions cascade with the model"
    con.execute(
        "INSERT INTO ml_models (id, user_id, name, algorithm_type, target_timeframe, symbols, parameters, "
        "training_status, created_at) VALUES ('m2', 'u1', 'm', 'arima', '1d', '[]', '{}', 'trained', '2026-01-01')"
    )
    con.execute(
        "INSERT INTO model_versions (id, model_id, version, algorithm, artifact_path, artifact_format, sha256, "
        "size, params, spec, metrics, training_window, data_fingerprint, created_at) "
        "VALUES ('v3', 'm2', 1, 'arima', 'x', 'y', 'ab', 1, '{}', '{}', '{}', '{}', 'cd', '2026-01-01')"
    )
    con.execute("DELETE FROM ml_models WHERE id='m2'")
    assert con.execute("SELECT count(*) FROM model_versions").fetchone()[0] == 0, "versions cascade too"
    con.close()
