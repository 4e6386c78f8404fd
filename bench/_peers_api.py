"""Peer servers for bench/api.py: a bare FastAPI endpoint and a raw-aiosqlite endpoint (one SELECT by id)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite
from fastapi import FastAPI

bare = FastAPI()


@bare.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


DB_PATH = os.environ.get("BENCH_DB", "")
USER_ID = os.environ.get("BENCH_USER_ID", "")
_conn: aiosqlite.Connection | None = None


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global _conn
    _conn = await aiosqlite.connect(DB_PATH)
    yield
    await _conn.close()


raw = FastAPI(lifespan=_lifespan)


@raw.get("/me")
async def me() -> dict[str, object]:
    assert _conn is not None
    async with _conn.execute("SELECT id, email, role, is_active FROM users WHERE id = ?", (USER_ID,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    return {"id": row[0], "email": row[1], "role": row[2], "is_active": bool(row[3])}
