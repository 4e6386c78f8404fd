"""The append-only, hash-chained audit log: one row per mutating action, written in the same transaction as the
change it records.

UPDATE and DELETE on ``audit_logs`` are rejected by the database (triggers created by the migrations).
Details are redacted before they are stored: keys that look like secrets never reach the table.

The chain (docs/audit.md): every row carries ``seq`` (1, 2, 3 ... without gaps), ``prev_hash`` (the previous
row's ``row_hash``; 64 zeros for seq 1) and ``row_hash`` = SHA-256 of ``prev_hash`` followed by the row's
canonical JSON (:func:`canonical_row`). The one-row table ``audit_chain_head`` holds the last seq and hash.
:func:`record_audit` queues the row in ``session.info``; a ``before_commit`` listener writes the queued rows as
the transaction's last statements, chained in call order while holding the head row (``SELECT ... FOR UPDATE``
on PostgreSQL; SQLite writers already hold the database write lock from ``BEGIN IMMEDIATE``), so concurrent
transactions cannot fork the chain, and the head being the last lock taken rules out deadlocks over it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from aaiti.core.db.base import Base, JSONType, UTCDateTime, Uuid, new_uuid, utcnow

SECRET_MARKERS = (
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
)
REDACTED = "[redacted]"
MAX_DETAIL_STRING = 500


class Outcome(enum.StrEnum):
    success = "success"
    denied = "denied"
    failed = "failed"


GENESIS_HASH = "0" * 64
HEAD_ID = 1
PENDING_KEY = "aaiti.audit.pending"
TO_LOG_KEY = "aaiti.audit.to_log"
"""``session.info`` key of the chained rows' log records, emitted once their transaction commits."""
log = structlog.get_logger("aaiti.audit")
"""``session.info`` key of the rows queued by :func:`record_audit` and not yet chained (call order)."""


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("idx_audit_logs_user_id", "user_id"),
        Index("idx_audit_logs_timestamp", "timestamp"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default=Outcome.success.value)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditChainHead(Base):
    """The chain's last ``seq`` and ``row_hash`` (one row, id 1). Updated in the transaction that appends."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("seq >= 0", name="seq_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who acts and from where; built by the HTTP layer, passed to services as plain data."""

    user_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def redact(value: Any, *, _depth: int = 0) -> Any:
    """Replace secret-looking keys' values, cap strings and nesting."""
    if _depth > 5:
        return REDACTED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if any(marker in lowered for marker in SECRET_MARKERS):
                out[str(key)] = REDACTED
            else:
                out[str(key)] = redact(item, _depth=_depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, _depth=_depth + 1) for v in value[:50]]
    if isinstance(value, str):
        return value[:MAX_DETAIL_STRING]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)[:MAX_DETAIL_STRING]


def record_audit(
    session: AsyncSession,
    ctx: AuditContext,
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: str | uuid.UUID | None = None,
    outcome: Outcome = Outcome.success,
    details: dict[str, Any] | None = None,
    user_id: uuid.UUID | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction (the caller commits).

    The row is queued and written when the transaction commits (or its savepoint is released), after every
    other statement of the transaction, with ``seq``, ``prev_hash`` and ``row_hash`` assigned in call order.
    Taking the chain head last means an audited transaction never holds the head while it waits for a data
    row, so on PostgreSQL two writers cannot deadlock over it. A row queued in a savepoint that rolls back
    is dropped with it.
    """
    row = AuditLog(
        id=new_uuid(),
        user_id=user_id if user_id is not None else ctx.user_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        outcome=outcome.value,
        details=redact(details) if details else None,
        ip_address=ctx.ip_address,
        user_agent=(ctx.user_agent or "")[:256] or None,
        request_id=ctx.request_id,
        timestamp=utcnow(),
    )
    sync = session.sync_session
    sync.info.setdefault(PENDING_KEY, []).append((sync.get_nested_transaction(), row))
    return row


def _canonical_value(value: Any) -> Any:
    """JSON content as both databases give it back: numbers compared by value (PostgreSQL's jsonb turns
    ``1e+300`` into an integer literal and keeps ``1.0``), so integral numbers become ints."""
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        number = Decimal(repr(value)).normalize()
        exponent = number.as_tuple().exponent
        return int(number) if isinstance(exponent, int) and exponent >= 0 else value
    return str(value)


def _uuid_text(value: uuid.UUID | str | None) -> str | None:
    return None if value is None else str(uuid.UUID(str(value)))


def _timestamp_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit timestamps are aware UTC datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_row(
    *,
    id: uuid.UUID | str,
    seq: int,
    user_id: uuid.UUID | str | None,
    action: str,
    resource_type: str | None,
    resource_id: str | None,
    outcome: str,
    details: Any,
    ip_address: str | None,
    user_agent: str | None,
    request_id: str | None,
    timestamp: datetime,
) -> str:
    """The hashed form of a row: JSON with sorted keys, no whitespace, UTF-8 text; UUIDs lowercase with dashes,
    the timestamp as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    content = {
        "id": _uuid_text(id),
        "seq": int(seq),
        "user_id": _uuid_text(user_id),
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "details": _canonical_value(details),
        "ip_address": ip_address,
        "user_agent": user_agent,
        "request_id": request_id,
        "timestamp": _timestamp_text(timestamp),
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canonical: str) -> str:
    """Hex SHA-256 of ``prev_hash`` (64 hex characters) followed by the canonical row, UTF-8 encoded."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8", "surrogatepass")).hexdigest()


def row_chain_hash(row: Any, prev_hash: str) -> str:
    """The ``row_hash`` of ``row`` (an :class:`AuditLog` or a result row with its columns) after ``prev_hash``."""
    return chain_hash(
        prev_hash,
        canonical_row(
            id=row.id,
            seq=row.seq,
            user_id=row.user_id,
            action=row.action,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            outcome=row.outcome,
            details=row.details,
            ip_address=row.ip_address,
            user_agent=row.user_agent,
            request_id=row.request_id,
            timestamp=row.timestamp,
        ),
    )


@event.listens_for(Session, "before_flush")
def _refuse_unchained_rows(session: Session, _flush_context: Any, _instances: Any) -> None:
    if any(isinstance(obj, AuditLog) and obj.seq is None for obj in session.new):
        raise RuntimeError("audit rows must be added with record_audit(), which chains them")


@event.listens_for(Session, "before_commit")
def _chain_pending_rows(session: Session) -> None:
    """Write the queued audit rows, chained in call order, as the last statements of the transaction.

    The head is read (and, on PostgreSQL, row-locked until the transaction ends) here and never cached.
    ``before_commit`` also runs when a savepoint is released; its rows (and any queued before it) are
    written then, inside the savepoint.
    """
    queued: list[tuple[SessionTransaction | None, AuditLog]] = session.info.pop(PENDING_KEY, [])
    if not queued:
        return
    rows = [row for _, row in queued]
    conn = session.connection()  # Core statements: no autoflush, no identity map
    current = conn.execute(
        select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID).with_for_update()
    ).one_or_none()
    if current is None:
        raise RuntimeError("audit_chain_head has no row: run the database migrations")
    seq, prev_hash = int(current.seq), str(current.hash)
    owner = session.get_nested_transaction()
    for row in rows:
        seq += 1
        row.seq = seq
        row.prev_hash = prev_hash
        row.row_hash = row_chain_hash(row, prev_hash)
        prev_hash = row.row_hash
        session.info.setdefault(TO_LOG_KEY, []).append((owner, _log_record(row)))
    conn.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(seq=seq, hash=prev_hash))
    session.add_all(rows)


def _log_record(row: AuditLog) -> dict[str, Any]:
    """What the security log says about an audit row (RELIABILITY LOG-01): never its details, which may
    quote user input; the row in the database has them, redacted."""
    return {
        "action": row.action,
        "outcome": row.outcome,
        "actor_id": None if row.user_id is None else str(row.user_id),
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "client_ip": row.ip_address,
        "request_id": row.request_id,
        "audit_seq": row.seq,
    }


@event.listens_for(Session, "after_commit")
def _log_committed_rows(session: Session) -> None:
    """One structured ``security_event`` line per audit row, only once the row is committed: a rolled-back
    action did not happen and is not reported as if it had."""
    for _, record in session.info.pop(TO_LOG_KEY, []):
        log.info("security_event", **record)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_rows(session: Session, previous_transaction: SessionTransaction) -> None:
    """Drop the queued rows and the log records of rows written inside the transaction (or savepoint) that
    was rolled back."""
    for key in (PENDING_KEY, TO_LOG_KEY):
        entries = session.info.get(key)
        if entries:
            session.info[key] = [(o, item) for o, item in entries if not _inside(o, previous_transaction)]


def _inside(owner: SessionTransaction | None, rolled_back: SessionTransaction) -> bool:
    """Whether an entry made while ``owner`` was the innermost savepoint (None: outside any) is undone by
    rolling back ``rolled_back``."""
    if rolled_back.parent is None:  # the whole transaction
        return True
    ancestor = owner
    while ancestor is not None:
        if ancestor is rolled_back:
            return True
        ancestor = ancestor.parent
    return False


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of :func:`verify_audit_chain`. ``count``, ``head_seq`` and ``head_hash`` describe the verified
    prefix; when ``ok`` is false, ``bad_seq`` is the first seq that does not verify and ``reason`` says why."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.count} rows, head seq {self.head_seq}, head hash {self.head_hash}"
        return (
            f"audit chain BROKEN at seq {self.bad_seq}: {self.reason} "
            f"({self.count} rows verified before it, last good hash {self.head_hash})"
        )


_ROW_COLUMNS = (
    AuditLog.id,
    AuditLog.seq,
    AuditLog.user_id,
    AuditLog.action,
    AuditLog.resource_type,
    AuditLog.resource_id,
    AuditLog.outcome,
    AuditLog.details,
    AuditLog.ip_address,
    AuditLog.user_agent,
    AuditLog.request_id,
    AuditLog.timestamp,
    AuditLog.prev_hash,
    AuditLog.row_hash,
)


async def _fetch_batch(session: AsyncSession, after: int, limit: int) -> tuple[list[Any], str | None]:
    """Rows with seq > ``after`` in seq order; on a row the types cannot decode, the good rows before it and
    the error (rows are then read one at a time to find it)."""
    query = select(*_ROW_COLUMNS).where(AuditLog.seq > after).order_by(AuditLog.seq)
    try:
        return list((await session.execute(query.limit(limit))).all()), None
    except (ValueError, TypeError) as exc:
        first_error = exc
    seqs = (
        await session.scalars(select(AuditLog.seq).where(AuditLog.seq > after).order_by(AuditLog.seq).limit(limit))
    ).all()
    good: list[Any] = []
    for seq in seqs:
        try:
            good.append((await session.execute(select(*_ROW_COLUMNS).where(AuditLog.seq == seq))).one())
        except (ValueError, TypeError) as exc:
            return good, f"row {seq} cannot be decoded: {exc}"
    return good, f"a row cannot be decoded: {first_error}"


async def verify_audit_chain(
    session: AsyncSession, *, batch_size: int = 1000, anchor: tuple[int, str] | None = None
) -> ChainReport:
    """Recompute the chain in seq order, ``batch_size`` rows at a time, and compare it with the head row.

    ``anchor``: a ``(seq, row_hash)`` pair exported earlier (docs/audit.md); the row with that seq must still
    have that hash, which catches a chain rewritten consistently from before that point.

    Give it a read session that has not started a transaction: on PostgreSQL the check runs in one
    REPEATABLE READ snapshot (SQLite read transactions are snapshots already), so appends committed meanwhile
    cannot make the stored head look ahead of the rows.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if session.bind is not None and session.bind.dialect.name == "postgresql" and not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    head = (
        await session.execute(select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID))
    ).one_or_none()
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(False, count, expected_seq - 1, prev_hash, seq, reason)

    while True:
        batch, decode_error = await _fetch_batch(session, expected_seq - 1, batch_size)
        for row in batch:
            if row.seq != expected_seq:
                return broken(expected_seq, f"row {expected_seq} is missing (next row has seq {row.seq})")
            if row.prev_hash != prev_hash:
                return broken(row.seq, "prev_hash does not match the previous row's hash")
            if row_chain_hash(row, prev_hash) != row.row_hash:
                return broken(row.seq, "row_hash does not match the row's content")
            if anchor is not None and row.seq == anchor[0] and row.row_hash != anchor[1].lower():
                return broken(row.seq, "row_hash differs from the exported hash for this seq")
            prev_hash = row.row_hash
            expected_seq += 1
            count += 1
        if decode_error is not None:
            return broken(expected_seq, decode_error)
        if len(batch) < batch_size:
            break
    if head is None:
        return broken(expected_seq, "audit_chain_head has no row")
    if int(head.seq) != count:
        if int(head.seq) > count:
            return broken(expected_seq, f"the head says {head.seq} rows but the chain ends at {count}")
        return broken(int(head.seq) + 1, f"rows after the head's seq {head.seq}")
    if head.hash != prev_hash:
        return broken(count, "the head hash does not match the last row's hash")
    if anchor is not None and anchor[0] > count:
        return broken(anchor[0], f"the exported seq {anchor[0]} is past the end of the chain ({count})")
    return ChainReport(True, count, count, prev_hash)
