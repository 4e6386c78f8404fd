"""RELIABILITY §4.3: 20 tasks x 25 read-modify-write increments must give exactly 500 (BEGIN IMMEDIATE)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text

from aaiti.admin.models import Setting
from aaiti.core.db.session import Database


async def test_read_modify_write_loses_nothing(db_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{db_path}", synchronous="NORMAL", pool_size=20)
    try:
        async with db.unit_of_work() as uow:
            uow.session.add(Setting(key="counter", value="0", updated_at=datetime.now(UTC)))
            await uow.commit()

        async def worker() -> None:
            for _ in range(25):
                async with db.unit_of_work() as uow:
                    current = int(await uow.session.scalar(select(Setting.value).where(Setting.key == "counter")) or 0)
                    await asyncio.sleep(0)
                    await uow.session.execute(
                        text("UPDATE settings SET value = :v WHERE key = 'counter'"), {"v": str(current + 1)}
                    )
                    await uow.commit()

        await asyncio.gather(*(worker() for _ in range(20)))
        async with db.read() as session:
            assert await session.scalar(select(Setting.value).where(Setting.key == "counter")) == "500"
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await db.dispose()


async def test_timestamps_are_aware_utc(db_path: Path) -> None:
    from datetime import timedelta, timezone

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    try:
        moment = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        async with db.unit_of_work() as uow:
            uow.session.add(Setting(key="t", value="1", updated_at=moment))
            await uow.commit()
        async with db.read() as session:
            stored = await session.scalar(select(Setting.updated_at).where(Setting.key == "t"))
        assert stored == moment
        assert stored is not None and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    finally:
        await db.dispose()
