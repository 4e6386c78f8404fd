from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from aaiti.core.config import ConfigError, Settings, resolve_secrets


def test_missing_secret_refused_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="required"):
        resolve_secrets(Settings(env="production", var_dir=tmp_path))


@pytest.mark.parametrize("secret", ["changeme", "super-secret", "short-but-random-x1", "a" * 64])
def test_weak_secrets_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError):
        resolve_secrets(Settings(env="production", var_dir=tmp_path, auth={"jwt_secret": secret}))


def test_dev_generates_and_persists_secret_0600(tmp_path: Path) -> None:
    settings = Settings(env="dev", var_dir=tmp_path)
    message = resolve_secrets(settings)
    assert message is not None and "generated" in message
    path = tmp_path / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Settings(env="dev", var_dir=tmp_path)
    assert resolve_secrets(again) is None
    assert again.jwt_key() == settings.jwt_key()
    assert len(settings.jwt_key().encode()) >= 32


def test_env_nested_and_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AAITI_SERVER__PORT", "9001")
    monkeypatch.setenv("AAITI_JOBS__WORKERS", "3")
    monkeypatch.setenv("AAITI_VAR_DIR", str(tmp_path))
    s = Settings()
    assert s.server.port == 9001
    assert s.jobs.effective_workers() == 3
    assert s.database.url.endswith(f"{tmp_path}/aaiti.db")


def test_wildcard_cors_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(server={"cors_origins": ["*"]})


def test_cli_refuses_to_start_without_secret(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "AAITI_AUTH__JWT_SECRET": "changeme",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aaiti", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "known default" in proc.stderr
