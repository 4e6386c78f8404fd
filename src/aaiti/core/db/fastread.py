"""Single-statement point reads for the hot path (the per-request token check).

Why not the ORM session: on SQLite, an ORM read costs about ten round trips to aiosqlite's worker thread (BEGIN,
cursor, execute, fetch, close, rollback, pool reset), which capped an authenticated read endpoint at ~230 req/s
on two cores. Here a statement is one ``execute_fetchall`` on one of a few read-only connections: one thread hop.
On PostgreSQL the statement goes through the engine's pool (asyncpg is already lean).

Statements use named parameters (``:id``), which both sqlite3 and SQLAlchemy ``text()`` understand.

``fetch_point`` goes one step further for primary-key lookups: it runs the statement on the event-loop thread
through a read-only sqlite3 connection with ``busy_timeout=0``. A primary-key read from the page cache takes
microseconds, less than the thread hop it replaces; in WAL mode readers take no lock a writer holds, and if
SQLite ever answers BUSY (a checkpoint or recovery in progress) the call falls back to the threaded path
instead of waiting. Never use it for scans or anything whose cost grows with the data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

READ_CONNECTIONS = 2
INLINE_READ_FALLBACKS = Counter(
    "aaiti_db_inline_read_fallbacks_total", "Point reads that met SQLITE_BUSY on the loop thread and went threaded"
)


class FastReader:
    def __init__(self, url: str, engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
        parsed = make_url(url)
        self._sqlite_path = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
        self._engine = engine
        self._busy_timeout_ms = busy_timeout_ms
        self._pool: asyncio.Queue[aiosqlite.Connection] | None = None
        self._opened: list[aiosqlite.Connection] = []
        self._lock = asyncio.Lock()
        self._inline_conn: sqlite3.Connection | None = None

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite_path is not None

    async def _connections(self) -> asyncio.Queue[aiosqlite.Connection]:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                pool: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
                for _ in range(READ_CONNECTIONS):
                    conn = await aiosqlite.connect(
                        f"file:{self._sqlite_path}?mode=ro", uri=True, timeout=self._busy_timeout_ms / 1000
                    )
                    await conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
                    await conn.execute("PRAGMA query_only=1")
                    self._opened.append(conn)
                    pool.put_nowait(conn)
                self._pool = pool
        return self._pool

    def _inline(self) -> sqlite3.Connection:
        if self._inline_conn is None:
            conn = sqlite3.connect(
                f"file:{self._sqlite_path}?mode=ro", uri=True, timeout=0, check_same_thread=True, isolation_level=None
            )
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=1")
            self._inline_conn = conn
        return self._inline_conn

    async def fetch_point(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """A primary-key lookup (see the module docstring); same result as :meth:`fetch_one`."""
        if self._sqlite_path is not None:
            try:
                row = self._inline().execute(sql, params).fetchone()
            except sqlite3.OperationalError:
                INLINE_READ_FALLBACKS.inc()
                return await self.fetch_one(sql, params)
            return tuple(row) if row is not None else None
        return await self.fetch_one(sql, params)

    async def fetch_one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run one SELECT and return its first row (raw driver values) or None."""
        if self._sqlite_path is None:
            async with self._engine.connect() as engine_conn:
                first = (await engine_conn.execute(text(sql), params)).first()
                return tuple(first) if first is not None else None
        pool = await self._connections()
        conn = await pool.get()
        try:
            rows = await conn.execute_fetchall(sql, params)
        finally:
            pool.put_nowait(conn)
        for found in rows:
            return tuple(found)
        return None

    async def close(self) -> None:
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        for conn in self._opened:
            await conn.close()
        self._opened.clear()
        self._pool = None
