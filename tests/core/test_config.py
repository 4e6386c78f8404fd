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


STRONG = "k7Qd9vX2mL4pR8sT1wY6zB3nC5fH0jE-aUgKoIqZ"
OTHER_STRONG = "Zp4Lq8Wm2Xr6Tn0Vb3Yc7Ud1Hf5Jg9Ks-eAoIwEs"


def _secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_file_variable_loads_and_strips_exactly_one_newline(tmp_path: Path) -> None:
    one = _secret_file(tmp_path / "one", STRONG + "\n")
    assert Settings(env="production", auth={"jwt_secret_file": one}).jwt_key() == STRONG
    crlf = _secret_file(tmp_path / "crlf", STRONG + "\r\n")
    assert Settings(env="production", auth={"jwt_secret_file": crlf}).jwt_key() == STRONG
    two = _secret_file(tmp_path / "two", STRONG + "\n\n")
    assert Settings(env="production", auth={"jwt_secret_file": two}).jwt_key() == STRONG + "\n"
    bare = _secret_file(tmp_path / "bare", STRONG)
    assert Settings(env="production", auth={"jwt_secret_file": bare}).jwt_key() == STRONG


def test_file_variables_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AAITI_AUTH__JWT_SECRET_FILE", str(_secret_file(tmp_path / "jwt", STRONG + "\n")))
    monkeypatch.setenv("AAITI_AUTH__JWT_PREVIOUS_SECRETS_FILE", str(_secret_file(tmp_path / "old", "")))
    monkeypatch.setenv("AAITI_MARKET__COINGECKO_API_KEY_FILE", str(_secret_file(tmp_path / "cg", "CG-key\n")))
    monkeypatch.setenv("AAITI_ADMIN_PASSWORD_FILE", str(_secret_file(tmp_path / "admin", "pw with spaces \n")))
    s = Settings(env="production", var_dir=tmp_path)
    assert resolve_secrets(s) is None
    assert s.jwt_key() == STRONG
    assert s.jwt_previous_keys() == ()
    assert s.market.coingecko_api_key is not None and s.market.coingecko_api_key.get_secret_value() == "CG-key"
    assert s.admin_password is not None and s.admin_password.get_secret_value() == "pw with spaces "


def test_secrets_dir_maps_nested_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    _secret_file(folder / "auth__jwt_secret", STRONG + "\n")
    _secret_file(folder / "auth__jwt_previous_secrets", f"{OTHER_STRONG}\n\n{STRONG[::-1]}\n")
    _secret_file(folder / "database__url", "postgresql+asyncpg://aaiti:pw@db:5432/aaiti\n")
    _secret_file(folder / "market__coingecko_api_key", "CG-abc\n")
    _secret_file(folder / "server__metrics_token", "scrape-token\n")
    _secret_file(folder / "admin_password", "admin pass\n")
    _secret_file(folder / "redis_url", "redis://:pw@redis:6379/0\n")
    monkeypatch.setenv("AAITI_SECRETS_DIR", str(folder))
    monkeypatch.setenv("AAITI_SERVER__METRICS_TOKEN", "from-environment")
    s = Settings(env="production")
    resolve_secrets(s)
    assert s.jwt_key() == STRONG
    assert s.jwt_previous_keys() == (OTHER_STRONG, STRONG[::-1])
    assert s.database.url == "postgresql+asyncpg://aaiti:pw@db:5432/aaiti"
    assert s.market.coingecko_api_key is not None and s.market.coingecko_api_key.get_secret_value() == "CG-abc"
    assert s.server.metrics_token == "from-environment", "a value given directly wins over the folder"
    assert s.admin_password is not None and s.admin_password.get_secret_value() == "admin pass"
    assert s.redis_url == "redis://:pw@redis:6379/0"
    shown = repr(s)
    for value in (STRONG, OTHER_STRONG, ":pw@", "CG-abc", "admin pass", "from-environment"):
        assert value not in shown, value


def test_secrets_dir_without_files_changes_nothing(tmp_path: Path) -> None:
    s = Settings(env="production", var_dir=tmp_path, secrets_dir=tmp_path)
    assert s.auth.jwt_secret is None and s.database.url.startswith("sqlite+aiosqlite:///")
    with pytest.raises(ConfigError, match="not a directory"):
        Settings(secrets_dir=tmp_path / "missing")


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_shared_secret_file_refused_outside_dev(tmp_path: Path, env: str, mode: int) -> None:
    path = _secret_file(tmp_path / "jwt", STRONG, mode)
    with pytest.raises(ConfigError, match="other users") as caught:
        Settings(env=env, auth={"jwt_secret_file": path})
    assert STRONG not in str(caught.value)
    folder = tmp_path / "dir"
    folder.mkdir()
    _secret_file(folder / "auth__jwt_secret", STRONG, mode)
    with pytest.raises(ConfigError, match="other users"):
        Settings(env=env, secrets_dir=folder)


def test_group_readable_secret_file_accepted_and_dev_allows_shared(tmp_path: Path) -> None:
    group = _secret_file(tmp_path / "group", STRONG, 0o440)
    assert Settings(env="production", auth={"jwt_secret_file": group}).jwt_key() == STRONG
    shared = _secret_file(tmp_path / "shared", STRONG, 0o644)
    assert Settings(env="dev", auth={"jwt_secret_file": shared}).jwt_key() == STRONG


def test_bad_secret_files_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AAITI_AUTH__JWT_SECRET_FILE: cannot read"):
        Settings(auth={"jwt_secret_file": tmp_path / "missing"})
    with pytest.raises(ConfigError, match="not a regular file"):
        Settings(auth={"jwt_secret_file": tmp_path})
    with pytest.raises(ConfigError, match="empty"):
        Settings(auth={"jwt_secret_file": _secret_file(tmp_path / "empty", "\n")})
    with pytest.raises(ConfigError, match="not both"):
        Settings(auth={"jwt_secret": STRONG, "jwt_secret_file": _secret_file(tmp_path / "jwt", STRONG)})
    big = _secret_file(tmp_path / "big", "x" * 70_000)
    with pytest.raises(ConfigError, match="larger than"):
        Settings(server={"metrics_token_file": big})


@pytest.mark.parametrize("previous", ["changeme", "short-but-random-x1", "a" * 64])
def test_weak_previous_secret_refused(tmp_path: Path, previous: str) -> None:
    s = Settings(env="production", var_dir=tmp_path, auth={"jwt_secret": STRONG, "jwt_previous_secrets": [previous]})
    with pytest.raises(ConfigError, match=r"AAITI_AUTH__JWT_PREVIOUS_SECRETS\[0\]"):
        resolve_secrets(s)


def test_weak_previous_secret_from_file_refused_in_dev_too(tmp_path: Path) -> None:
    old = _secret_file(tmp_path / "old", f"{OTHER_STRONG}\nchangeme\n")
    s = Settings(env="dev", var_dir=tmp_path, auth={"jwt_previous_secrets_file": old})
    with pytest.raises(ConfigError, match=r"PREVIOUS_SECRETS\[1\] is a known default"):
        resolve_secrets(s)


def test_previous_secrets_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AAITI_AUTH__JWT_SECRET", STRONG)
    monkeypatch.setenv("AAITI_AUTH__JWT_PREVIOUS_SECRETS", f'["{OTHER_STRONG}"]')
    s = Settings()
    resolve_secrets(s)
    assert s.jwt_previous_keys() == (OTHER_STRONG,)


def test_database_password_file_goes_into_the_url(tmp_path: Path) -> None:
    pw = _secret_file(tmp_path / "pg", "p@ss/word:1\n")
    s = Settings(database={"url": "postgresql+asyncpg://aaiti@postgres:5432/aaiti", "password_file": pw})
    from sqlalchemy.engine import make_url

    assert make_url(s.database.url).password == "p@ss/word:1"
    assert "p@ss" not in repr(s)
    with pytest.raises(ConfigError, match="already carries a password"):
        Settings(database={"url": "postgresql+asyncpg://aaiti:x@postgres/aaiti", "password_file": pw})
    with pytest.raises(ConfigError, match="not SQLite"):
        Settings(var_dir=tmp_path, database={"password_file": pw})


def test_cli_reports_a_shared_secret_file_without_its_value(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _secret_file(tmp_path / "jwt", STRONG, 0o644)
    env = {
        "AAITI_ENV": "production",
        "AAITI_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "AAITI_AUTH__JWT_SECRET_FILE": str(path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aaiti", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "AAITI_AUTH__JWT_SECRET_FILE" in proc.stderr and "other users" in proc.stderr
    assert STRONG not in proc.stderr + proc.stdout
