"""The audit log's hash chain (LOG-03): seq 1..N without gaps under concurrency, on SQLite and PostgreSQL,
chaining in call order across flushes and savepoints, tampering found by ``verify_audit_chain``, the CLI and
the admin route, and the backfill of revision 0005."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text
from tests.conftest import PASSWORD, Account, make_settings

from aaiti.app import create_app
from aaiti.cli import alembic_config, main
from aaiti.core.audit import (
    GENESIS_HASH,
    AuditChainHead,
    AuditContext,
    AuditLog,
    ChainReport,
    Outcome,
    canonical_row,
    chain_hash,
    record_audit,
    verify_audit_chain,
)
from aaiti.core.db.engine import create_engine
from aaiti.core.db.session import Database

CONCURRENT = 30
CTX = AuditContext(ip_address="127.0.0.1", user_agent="pytest", request_id="req-1")
AWKWARD_DETAILS: dict[str, Any] = {
    "float": 1.0,
    "huge": 1e300,
    "tiny": 1e-7,
    "pi": 3.141592653589793,
    "text": 'é ü ☃ "quoted" \\ back',
    "nested": {"b": [1, 2.5, None, True], "a": {"z": "last", "A": "first"}},
    "big_int": 2**70,
}


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _verify(url: str, *, batch_size: int = 1000) -> ChainReport:
    db = Database(url)
    try:
        async with db.read() as session:
            return await verify_audit_chain(session, batch_size=batch_size)
    finally:
        await db.dispose()


async def _chain(url: str) -> list[tuple[int, str, str, str]]:
    """(seq, action, prev_hash, row_hash) in seq order."""
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(AuditLog.seq, AuditLog.action, AuditLog.prev_hash, AuditLog.row_hash).order_by(AuditLog.seq)
            )
            return [(r.seq, r.action, r.prev_hash, r.row_hash) for r in rows]
    finally:
        await db.dispose()


async def _write(url: str, actions: list[str], details: dict[str, Any] | None = None) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as uow:
            for action in actions:
                record_audit(uow.session, CTX, action, resource_type="test", details=details or {"n": action})
            await uow.commit()
    finally:
        await db.dispose()


def _assert_linked(chain: list[tuple[int, str, str, str]]) -> None:
    assert [seq for seq, *_ in chain] == list(range(1, len(chain) + 1))
    assert chain[0][2] == GENESIS_HASH
    for (_, _, _, previous), (_, _, prev_hash, _) in itertools.pairwise(chain):
        assert prev_hash == previous


def _tamper(db_path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    """What someone with write access to the file can do: drop the guards, then change the table."""
    con = sqlite3.connect(db_path)
    con.execute("DROP TRIGGER audit_logs_no_update")
    con.execute("DROP TRIGGER audit_logs_no_delete")
    con.execute(statement, params)
    con.commit()
    con.close()


async def test_chain_verifies_after_api_mutations(
    client: httpx.AsyncClient, app: Any, alice: Account, admin: Account
) -> None:
    assert (await client.get("/api/audit-logs/verify", headers=alice.headers)).status_code == 403
    await client.post("/api/auth/login", json={"email": alice.email, "password": "definitely wrong"})
    await client.put("/api/settings/ui.announcement", headers=admin.headers, json={"value": "maintenance at 5"})
    await client.patch(f"/api/users/{alice.id}", headers=admin.headers, json={"role": "viewer"})
    chain = await _chain(app.fastapi.state.core.db.url)
    _assert_linked(chain)
    # two registrations and logins (the fixtures), a failed login, a setting, a role change
    assert sorted(a for _, a, *_ in chain) == sorted(
        ["auth.register"] * 2 + ["auth.login"] * 3 + ["settings.update", "users.update"]
    )

    r = await client.get("/api/audit-logs/verify", headers=admin.headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report == {
        "ok": True,
        "count": len(chain),
        "head_seq": len(chain),
        "head_hash": chain[-1][3],
        "bad_seq": None,
        "reason": None,
    }


async def test_concurrent_registrations_chain_without_gaps(client: httpx.AsyncClient, app: Any) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/auth/register", json={"email": f"user{i}@example.com", "password": PASSWORD})
            for i in range(CONCURRENT)
        )
    )
    assert [r.status_code for r in responses] == [201] * CONCURRENT
    url = app.fastapi.state.core.db.url
    chain = await _chain(url)
    assert len(chain) == CONCURRENT
    _assert_linked(chain)
    report = await _verify(url, batch_size=7)  # several batches
    assert report.ok and report.count == CONCURRENT and report.head_hash == chain[-1][3]


async def test_several_flushes_savepoints_and_rollbacks_keep_call_order(db_path: Path) -> None:
    url = _sqlite_url(db_path)
    db = Database(url)
    try:
        async with db.unit_of_work() as uow:
            record_audit(uow.session, CTX, "a")
            await uow.session.flush()
            record_audit(uow.session, CTX, "b")
            record_audit(uow.session, CTX, "c")
            await uow.session.flush()

            async def undone() -> None:
                async with uow.session.begin_nested():
                    record_audit(uow.session, CTX, "in-savepoint-flushed")
                    await uow.session.flush()
                    record_audit(uow.session, CTX, "in-savepoint-pending")
                    raise RuntimeError("undo")

            with pytest.raises(RuntimeError, match="undo"):
                await undone()
            record_audit(uow.session, CTX, "d", outcome=Outcome.denied)
            await uow.commit()
        async with db.unit_of_work() as uow:
            record_audit(uow.session, CTX, "rolled-back")
            await uow.session.flush()
            await uow.rollback()
        async with db.unit_of_work() as uow:
            record_audit(uow.session, CTX, "e")
            await uow.commit()
        async with db.read() as session:
            head = (await session.execute(select(AuditChainHead.seq, AuditChainHead.hash))).one()
    finally:
        await db.dispose()
    chain = await _chain(url)
    assert [a for _, a, *_ in chain] == ["a", "b", "c", "d", "e"]
    _assert_linked(chain)
    assert (head.seq, head.hash) == (5, chain[-1][3])
    assert (await _verify(url)).ok


async def test_audit_rows_added_without_record_audit_are_refused(db_path: Path) -> None:
    db = Database(_sqlite_url(db_path))
    try:
        async with db.unit_of_work() as uow:
            uow.session.add(AuditLog(action="sneaky", outcome="success"))
            with pytest.raises(RuntimeError, match="record_audit"):
                await uow.session.flush()
    finally:
        await db.dispose()


async def test_awkward_details_round_trip_on_sqlite(db_path: Path) -> None:
    url = _sqlite_url(db_path)
    await _write(url, ["x", "y"], AWKWARD_DETAILS)
    report = await _verify(url)
    assert report.ok and report.count == 2


@pytest.mark.parametrize(
    ("statement", "bad_seq", "reason"),
    [
        ('UPDATE audit_logs SET details = \'{"n": "forged"}\' WHERE seq = 3', 3, "row_hash"),
        ("UPDATE audit_logs SET outcome = 'failed' WHERE seq = 5", 5, "row_hash"),
        ("DELETE FROM audit_logs WHERE seq = 2", 2, "missing"),
        ("DELETE FROM audit_logs WHERE seq = 6", 6, "head says 6 rows"),
        # another first hex digit
        (
            "UPDATE audit_logs SET row_hash = iif(substr(row_hash, 1, 1) = '0', '1', '0') || substr(row_hash, 2) "
            "WHERE seq = 4",
            4,
            "row_hash",
        ),
        ("UPDATE audit_logs SET prev_hash = '1' || substr(prev_hash, 2) WHERE seq = 1", 1, "prev_hash"),
        (
            "UPDATE audit_chain_head SET hash = iif(substr(hash, 1, 1) = '0', '1', '0') || substr(hash, 2)",
            6,
            "head hash",
        ),
        ("UPDATE audit_chain_head SET seq = 5", 6, "rows after the head"),
        ("UPDATE audit_logs SET details = '{not json' WHERE seq = 3", 3, "cannot be decoded"),
    ],
)
async def test_tampering_is_found(db_path: Path, statement: str, bad_seq: int, reason: str) -> None:
    url = _sqlite_url(db_path)
    await _write(url, ["one", "two", "three"])
    await _write(url, ["four", "five", "six"])
    assert (await _verify(url)).ok
    _tamper(db_path, statement)
    report = await _verify(url, batch_size=2)
    assert not report.ok
    assert report.bad_seq == bad_seq
    assert reason in (report.reason or "")


async def test_rehashing_one_row_breaks_the_next_link(db_path: Path) -> None:
    """Forging a row and recomputing its own hash is not enough: the next row still names the old hash."""
    url = _sqlite_url(db_path)
    await _write(url, ["one", "two", "three"])
    chain = await _chain(url)
    db = Database(url)
    try:
        async with db.read() as session:
            row = (await session.scalars(select(AuditLog).where(AuditLog.seq == 2))).one()
            forged = canonical_row(
                id=row.id,
                seq=2,
                user_id=None,
                action="forged",
                resource_type=row.resource_type,
                resource_id=row.resource_id,
                outcome=row.outcome,
                details=row.details,
                ip_address=row.ip_address,
                user_agent=row.user_agent,
                request_id=row.request_id,
                timestamp=row.timestamp,
            )
    finally:
        await db.dispose()
    new_hash = chain_hash(chain[0][3], forged)
    _tamper(db_path, "UPDATE audit_logs SET action = 'forged', row_hash = ? WHERE seq = 2", (new_hash,))
    report = await _verify(url)
    assert (report.ok, report.bad_seq, report.count) == (False, 3, 2)
    assert "prev_hash" in (report.reason or "")


async def test_cli_audit_verify_exit_codes(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _sqlite_url(db_path)
    monkeypatch.setenv("AAITI_ENV", "test")
    monkeypatch.setenv("AAITI_DATABASE__URL", url)
    assert await asyncio.to_thread(main, ["audit-verify"]) == 0
    assert f"audit chain OK: 0 rows, head seq 0, head hash {GENESIS_HASH}" in capsys.readouterr().out
    await _write(url, ["one", "two", "three"])
    assert await asyncio.to_thread(main, ["audit-verify"]) == 0
    assert "audit chain OK: 3 rows" in capsys.readouterr().out
    exported = (await _chain(url))[1]
    assert await asyncio.to_thread(main, ["audit-verify", "--expect", f"2:{exported[3]}"]) == 0
    assert await asyncio.to_thread(main, ["audit-verify", "--expect", f"2:{GENESIS_HASH}"]) == 1
    assert "BROKEN at seq 2: row_hash differs from the exported hash" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["audit-verify", "--expect", f"9:{exported[3]}"]) == 1
    assert await asyncio.to_thread(main, ["audit-verify", "--expect", "2:abc"]) == 2
    assert await asyncio.to_thread(main, ["audit-verify", "--batch-size", "0"]) == 2
    capsys.readouterr()
    _tamper(db_path, "UPDATE audit_logs SET details = NULL WHERE seq = 2")
    assert await asyncio.to_thread(main, ["audit-verify", "--batch-size", "1"]) == 1
    assert "BROKEN at seq 2" in capsys.readouterr().out


async def test_migration_backfills_existing_rows(tmp_path: Path) -> None:
    db_path = tmp_path / "legacy.db"
    url = _sqlite_url(db_path)
    cfg: Any = alembic_config(url)
    await asyncio.to_thread(command.upgrade, cfg, "0004")
    base = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(5)]
    # Two rows share a timestamp: the backfill orders them by id.
    stamps = [base + timedelta(seconds=s) for s in (4, 0, 2, 2, 1)]
    con = sqlite3.connect(db_path)
    for i, (row_id, stamp) in enumerate(zip(ids, stamps, strict=True)):
        con.execute(
            "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, outcome, details, "
            "ip_address, user_agent, request_id, timestamp) VALUES (?, NULL, ?, 'test', ?, 'success', ?, "
            "'10.0.0.1', 'legacy', NULL, ?)",
            (
                row_id.hex,
                f"legacy.{i}",
                str(i),
                json.dumps(AWKWARD_DETAILS) if i % 2 else None,
                stamp.strftime("%Y-%m-%d %H:%M:%S.%f"),
            ),
        )
    con.commit()
    con.close()
    await asyncio.to_thread(command.upgrade, cfg, "head")

    expected = [f"legacy.{i}" for _, _, i in sorted((stamps[i], ids[i].hex, i) for i in range(5))]
    chain = await _chain(url)
    assert [a for _, a, *_ in chain] == expected
    _assert_linked(chain)
    assert (await _verify(url)).ok
    con = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit_logs SET action = 'x' WHERE seq = 1")
    con.close()
    await _write(url, ["after-migration"])
    chain = await _chain(url)
    assert chain[-1][:2] == (6, "after-migration")
    report = await _verify(url)
    assert report.ok and report.count == 6


async def test_concurrent_audited_requests_on_postgres(pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tmp_path / "unused.db", database={"url": pg_url})
    asgi = create_app(settings)
    async with (
        LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi, client=("127.0.0.1", 1)), base_url="http://t"
        ) as client,
    ):
        responses = await asyncio.gather(
            *(
                client.post("/api/auth/register", json={"email": f"pg{i}@example.com", "password": PASSWORD})
                for i in range(CONCURRENT)
            )
        )
        assert [r.status_code for r in responses] == [201] * CONCURRENT
    await _write(pg_url, ["awkward"], AWKWARD_DETAILS)
    chain = await _chain(pg_url)
    assert len(chain) == CONCURRENT + 1
    _assert_linked(chain)
    report = await _verify(pg_url, batch_size=8)
    assert report.ok and report.count == CONCURRENT + 1 and report.head_hash == chain[-1][3]


async def test_audit_and_data_locks_cannot_deadlock_on_postgres(pg_url: str) -> None:
    """One transaction updates a row and then audits; another audits first and then needs that row. With the
    chain head taken at flush the second would hold the head while waiting for the row, and the first would
    wait for the head: a deadlock, which PostgreSQL breaks by aborting one of them. Audit rows are written at
    commit, so the head is always the last lock taken and both commit."""
    db = Database(pg_url)
    key = f"test.deadlock.{uuid.uuid4().hex[:8]}"
    try:
        async with db.unit_of_work() as uow:
            await uow.session.execute(
                text("INSERT INTO settings (key, value, updated_at) VALUES (:k, '0', now())"), {"k": key}
            )
            await uow.commit()
        first_holds_row = asyncio.Event()
        second_audited = asyncio.Event()

        async def first() -> None:
            async with db.unit_of_work() as uow:
                await uow.session.execute(text("UPDATE settings SET value = '1' WHERE key = :k"), {"k": key})
                first_holds_row.set()
                await second_audited.wait()
                await asyncio.sleep(0.2)  # the second is now blocked on the row
                record_audit(uow.session, CTX, "test.first")
                await uow.commit()

        async def second() -> None:
            await first_holds_row.wait()
            async with db.unit_of_work() as uow:
                record_audit(uow.session, CTX, "test.second")
                await uow.session.flush()
                second_audited.set()
                await uow.session.execute(text("UPDATE settings SET value = '2' WHERE key = :k"), {"k": key})
                await uow.commit()

        await asyncio.wait_for(asyncio.gather(first(), second()), timeout=30)
        async with db.read() as session:
            value = await session.scalar(text("SELECT value FROM settings WHERE key = :k"), {"k": key})
            actions = (await session.scalars(select(AuditLog.action).order_by(AuditLog.seq.desc()).limit(2))).all()
    finally:
        await db.dispose()
    assert value == "2"
    assert list(actions) == ["test.second", "test.first"]
    assert (await _verify(pg_url)).ok


async def test_migration_backfill_on_postgres(pg_url: str) -> None:
    """After the concurrency test its rows are re-chained too, in (timestamp, id) order."""
    cfg: Any = alembic_config(pg_url)
    await asyncio.to_thread(command.downgrade, cfg, "0004")
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            for i in range(3):
                await conn.execute(
                    text(
                        "INSERT INTO audit_logs (id, action, outcome, details, timestamp) "
                        "VALUES (gen_random_uuid(), :action, 'success', CAST(:details AS jsonb), "
                        "now() + make_interval(secs => :offset))"
                    ),
                    {"action": f"legacy.{i}", "details": json.dumps(AWKWARD_DETAILS), "offset": 3600 - i},
                )
    finally:
        await engine.dispose()
    await asyncio.to_thread(command.upgrade, cfg, "head")
    chain = await _chain(pg_url)
    _assert_linked(chain)
    assert [a for _, a, *_ in chain[-3:]] == ["legacy.2", "legacy.1", "legacy.0"]
    report = await _verify(pg_url)
    assert report.ok and report.count == len(chain)
