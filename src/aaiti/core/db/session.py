"""Sessions and the unit of work.

The request or task boundary owns the transaction: services receive a session and never commit. The boundary
calls :meth:`UnitOfWork.commit`, which runs the after-commit callbacks (event publishing, job submission) only
once the commit succeeded, so nothing is announced that the database does not hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aaiti.core.db.engine import SQLitePragmas, create_engine
from aaiti.core.db.fastread import FastReader

AfterCommit = Callable[[], Awaitable[None]]
log = structlog.get_logger(__name__)


class UnitOfWork:
    def __init__(self, session: AsyncSession, publisher: Any = None) -> None:
        self.session = session
        self.publisher = publisher
        """Set by boundaries that announce events after commit (the job runner); None elsewhere."""
        self._after_commit: list[AfterCommit] = []

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` after the next successful commit (dropped on rollback)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        await self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:  # an announcement failing must not undo or hide a committed change
                log.exception("after_commit_callback_failed")

    async def rollback(self) -> None:
        self._after_commit.clear()
        await self.session.rollback()


class Database:
    """Holds the write engine and (on SQLite) a separate read engine with deferred transactions."""

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 15_000,
        pool_size: int = 10,
        echo: bool = False,
    ) -> None:
        self.url = url
        pragmas = SQLitePragmas(synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        backend = make_url(url).get_backend_name()
        if backend == "sqlite":
            database = make_url(url).database
            if database:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_engine(url, pragmas=pragmas, pool_size=pool_size, echo=echo)
        self.read_engine: AsyncEngine = (
            create_engine(url, pragmas=pragmas, read_only=True, pool_size=pool_size, echo=echo)
            if backend == "sqlite"
            else self.engine
        )
        self.fast = FastReader(url, self.read_engine, busy_timeout_ms=busy_timeout_ms)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A write transaction; the caller commits. Left uncommitted, it rolls back."""
        async with self._sessions() as session:
            uow = UnitOfWork(session)
            try:
                yield uow
            finally:
                if session.in_transaction():
                    await uow.rollback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (never commits)."""
        async with self._read_sessions() as session:
            # close() (on exit) ends the transaction and detaches objects without expiring them.
            yield session

    async def ping(self) -> None:
        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.fast.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
