"""Shared fixtures: a migrated SQLite file per test (copied from a template migrated once), the app with its
lifespan, HTTP clients, users of every role, and a real uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from aaiti.app import create_app
from aaiti.cli import migrate
from aaiti.core.config import Settings

TEST_SECRET = secrets.token_urlsafe(48)
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


def make_settings(tmp_path: Path, db_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "var_dir": tmp_path,
        "database": {"url": f"sqlite+aiosqlite:///{db_path}", "synchronous": "NORMAL"},
        "auth": {"jwt_secret": TEST_SECRET, "login_max_per_account": 1000, "login_max_per_ip": 1000},
        "jobs": {"workers": 1},
        "log": {"level": "WARNING", "json_logs": True},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings(**base)


@pytest.fixture
def db_path(tmp_path: Path, template_db: Path) -> Path:
    target = tmp_path / "aaiti.db"
    shutil.copy(template_db, target)
    return target


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(tmp_path: Path, db_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, db_path, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    asgi = create_app(settings)
    async with LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30):
        yield asgi


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Account:
    id: str
    email: str
    password: str
    access: str
    refresh: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def set_role(app: Any, email: str, role: str) -> None:
    from sqlalchemy import update

    from aaiti.auth.models import User

    core = app.fastapi.state.core
    async with core.db.unit_of_work() as uow:
        await uow.session.execute(update(User).where(User.email == email).values(role=role))
        await uow.commit()


async def make_account(client: httpx.AsyncClient, app: Any, email: str, role: str = "trader") -> Account:
    user = await register(client, email)
    if role != "trader":
        await set_role(app, email, role)
    tokens = await login(client, email)
    return Account(user["id"], email, PASSWORD, tokens["access_token"], tokens["refresh_token"], role)


@pytest.fixture
async def alice(client: httpx.AsyncClient, app: Any) -> Account:
    return await make_account(client, app, "alice@example.com")


@pytest.fixture
async def bob(client: httpx.AsyncClient, app: Any) -> Account:
    return await make_account(client, app, "bob@example.com")


@pytest.fixture
async def viewer(client: httpx.AsyncClient, app: Any) -> Account:
    return await make_account(client, app, "vera@example.com", "viewer")


@pytest.fixture
async def admin(client: httpx.AsyncClient, app: Any) -> Account:
    return await make_account(client, app, "root@example.com", "admin")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def live_server(asgi: Any) -> AsyncIterator[str]:
    """Run ``asgi`` on a real uvicorn bound to 127.0.0.1 with a free port; yields the base URL."""
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=0, lifespan="on", log_config=None, access_log=False, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's AAITI_* variables must not leak into tests."""
    for name in (
        "AAITI_ENV",
        "AAITI_AUTH__JWT_SECRET",
        "AAITI_DATABASE__URL",
        "AAITI_ADMIN_EMAIL",
        "AAITI_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


def pg_available() -> bool:
    """Whether the PostgreSQL of these machines (127.0.0.1:5432, trust auth, database ``test``) answers."""
    from sqlalchemy import text

    from aaiti.core.db.engine import create_engine

    async def probe() -> bool:
        engine = create_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            await engine.dispose()

    return asyncio.run(probe())


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """PostgreSQL migrated to head for one test module, back to base after it. Skipped, with the reason, only
    when no server answers."""
    from alembic import command

    from aaiti.cli import alembic_config

    if not pg_available():
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (database 'test'); the PG leg needs it")
    cfg: Any = alembic_config(PG_URL)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    yield PG_URL
    command.downgrade(cfg, "base")
