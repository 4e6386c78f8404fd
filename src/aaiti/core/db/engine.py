"""Engine creation. SQLite gets its pragmas on every connection and ``BEGIN IMMEDIATE`` for write transactions.

Why ``BEGIN IMMEDIATE``: the sqlite3 driver does not open a transaction for a SELECT, so a read-modify-write
under aiosqlite silently loses updates; a deferred ``BEGIN`` instead fails with SQLITE_BUSY_SNAPSHOT, which
``busy_timeout`` cannot wait out. Taking the write lock at BEGIN makes writers queue on ``busy_timeout``.

Pure reads go through a second engine whose transactions start with a plain (deferred) ``BEGIN``, so readers
never wait for the write lock (WAL lets them read while a writer works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_CACHE_SIZE_KIB = -64_000  # the seed's 64 MB page cache
SQLITE_MMAP_SIZE = 268_435_456  # the seed's 256 MB memory map


@dataclass(frozen=True, slots=True)
class SQLitePragmas:
    synchronous: str = "FULL"
    busy_timeout_ms: int = 15_000


def _install_sqlite_hooks(engine: AsyncEngine, pragmas: SQLitePragmas, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={pragmas.synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(pragmas.busy_timeout_ms)}")
        cur.execute(f"PRAGMA cache_size={SQLITE_CACHE_SIZE_KIB}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_SIZE}")
        cur.close()
        # SQLAlchemy emits BEGIN itself (below); the driver's implicit transaction handling is switched off.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(
    url: str,
    *,
    pragmas: SQLitePragmas | None = None,
    read_only: bool = False,
    pool_size: int = 10,
    echo: bool = False,
) -> AsyncEngine:
    """Create an async engine for ``url``. On SQLite, ``read_only=True`` starts transactions deferred."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in {"", ":memory:"}:
            raise ValueError("use a SQLite file, not an in-memory database (WAL and several connections)")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": (pragmas or SQLitePragmas()).busy_timeout_ms / 1000}}
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        engine = create_async_engine(url, echo=echo, **kwargs)
        _install_sqlite_hooks(engine, pragmas or SQLitePragmas(), immediate=not read_only)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    return create_async_engine(url, echo=echo, poolclass=NullPool)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
