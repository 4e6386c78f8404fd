"""``aaiti create-admin`` as an operator runs it: a real process, the environment, a password file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from aaiti.app import create_app
from aaiti.core.config import Settings

ADMIN_PASSWORD = "an operator's long passphrase 7"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AAITI_")}
    return subprocess.run(
        [sys.executable, "-m", "aaiti", "create-admin", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def test_create_admin_from_a_password_file_then_log_in(tmp_path: Path) -> None:
    secret_file = tmp_path / "admin_password"
    secret_file.write_text(ADMIN_PASSWORD + "\n")
    secret_file.chmod(0o600)
    env = {"AAITI_ENV": "dev", "AAITI_VAR_DIR": str(tmp_path / "var"), "AAITI_ADMIN_PASSWORD_FILE": str(secret_file)}

    first = _run(env, "--email", "Root@Example.com")
    assert first.returncode == 0, first.stderr
    assert "admin root@example.com created" in first.stdout
    assert ADMIN_PASSWORD not in first.stdout + first.stderr
    second = _run(env, "--email", "root@example.com")
    assert second.returncode == 0, second.stderr
    assert "already exists (unchanged)" in second.stdout

    with sqlite3.connect(tmp_path / "var" / "aaiti.db") as conn:
        assert conn.execute("SELECT email, role FROM users").fetchall() == [("root@example.com", "admin")]
    # The server started on the same folder accepts the password (one trailing newline of the file removed).
    # The replay source: dev defaults would load the bundled history and try to reach CoinGecko.
    settings = Settings(
        env="dev",
        var_dir=tmp_path / "var",
        log={"level": "WARNING"},  # type: ignore[arg-type]
        market={"source": "replay", "load_bundled": False},  # type: ignore[arg-type]
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            res = await client.post("/api/auth/login", json={"email": "root@example.com", "password": ADMIN_PASSWORD})
            assert res.status_code == 200, res.text
            me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {res.json()['access_token']}"})
            assert me.json()["role"] == "admin"


def test_create_admin_refuses_a_weak_password_cleanly(tmp_path: Path) -> None:
    env = {"AAITI_ENV": "dev", "AAITI_VAR_DIR": str(tmp_path / "var")}
    res = _run(env, "--email", "root@example.com", "--password", "password123")
    assert res.returncode == 2
    assert res.stderr.startswith("error: ")
    assert "Traceback" not in res.stderr
    with sqlite3.connect(tmp_path / "var" / "aaiti.db") as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_create_admin_needs_the_servers_key_outside_dev_mode(tmp_path: Path) -> None:
    env = {"AAITI_ENV": "production", "AAITI_VAR_DIR": str(tmp_path / "var")}
    res = _run(env, "--email", "root@example.com", "--password", ADMIN_PASSWORD)
    assert res.returncode == 2
    assert "configuration error: AAITI_AUTH__JWT_SECRET" in res.stderr
