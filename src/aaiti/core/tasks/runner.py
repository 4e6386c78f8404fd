"""The local job runner: a spawn process pool (cores-1 workers, one thread each) behind the ``jobs`` table.

Lifecycle of a job: the request creates the row (queued) in its transaction; after commit the runner is asked
to start it; a worker process runs the job function; progress arrives through a manager queue and is written
to the row (throttled) and published to ``job:{id}``; the outcome is written with the row's final status.
Cancellation: a queued job is cancelled at once; a running one gets its manager event set and stops at the
job's next check. At start-up, jobs left queued or running by a previous process are marked failed
("interrupted by restart").
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import structlog
from sqlalchemy import select, update

from aaiti.core.clock import Clock
from aaiti.core.db.session import Database
from aaiti.core.observability import metrics
from aaiti.core.realtime.publisher import Publisher
from aaiti.core.tasks import worker
from aaiti.core.tasks.models import TERMINAL_STATUSES, Job, JobStatus
from aaiti.core.tasks.registry import get_kind

log = structlog.get_logger(__name__)
INTERRUPTED = "interrupted by restart"
PROGRESS_DB_INTERVAL_S = 0.5


class TaskRunner(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def enqueue(self, job_id: uuid.UUID) -> None:
        """Start a committed, queued job (call after the commit)."""
        ...

    async def cancel(self, job_id: uuid.UUID) -> None:
        """Signal a running job to stop (the row is updated by the caller)."""
        ...

    def ready(self) -> tuple[bool, str]: ...


def job_payload(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


class LocalTaskRunner:
    def __init__(
        self, db: Database, publisher: Publisher, clock: Clock, *, workers: int, max_tasks_per_child: int
    ) -> None:
        self._db = db
        self._publisher = publisher
        self._clock = clock
        self._workers = workers
        self._max_tasks = max_tasks_per_child
        self._pool: ProcessPoolExecutor | None = None
        self._manager: Any = None
        self._queue: Any = None
        self._cancel_events: dict[uuid.UUID, Any] = {}
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        self._last_db_progress: dict[uuid.UUID, float] = {}
        self._stopping = False
        self._started = False
        self._pool_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._cancel_before_start: set[uuid.UUID] = set()

    async def start(self) -> None:
        """Recover interrupted jobs. The process pool starts with the first job (start-up stays fast)."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self._workers)
        self._pool_lock = asyncio.Lock()
        self._started = True
        await self.recover()

    async def _ensure_pool(self) -> ProcessPoolExecutor:
        async with self._pool_lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._manager = await asyncio.to_thread(ctx.Manager)
                self._queue = self._manager.Queue()
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=ctx,
                    initializer=worker.init_worker,
                    max_tasks_per_child=self._max_tasks,
                )
                self._reader = threading.Thread(target=self._read_progress, name="job-progress", daemon=True)
                self._reader.start()
            return self._pool

    async def recover(self) -> int:
        """Mark jobs a previous process left unfinished as failed. Returns how many."""
        async with self._db.unit_of_work() as uow:
            result = await uow.session.execute(
                update(Job)
                .where(Job.status.in_([JobStatus.queued.value, JobStatus.running.value]))
                .values(status=JobStatus.failed.value, error=INTERRUPTED, finished_at=self._clock.now())
                .returning(Job.id)
            )
            count = len(result.all())
            await uow.commit()
        if count:
            log.warning("jobs_interrupted_by_restart", count=count)
        return count

    async def stop(self) -> None:
        self._stopping = True
        for event in self._cancel_events.values():
            event.set()
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        if self._queue is not None:
            self._queue.put(None)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 5)
        if self._manager is not None:
            await asyncio.to_thread(self._manager.shutdown)

    def ready(self) -> tuple[bool, str]:
        if not self._started or self._stopping:
            return False, "job runner not started"
        return True, f"{self._workers} worker process(es), {len(self._tasks)} job(s) active"

    def enqueue(self, job_id: uuid.UUID) -> None:
        if not self._started:
            raise RuntimeError("runner not started")
        self._tasks[job_id] = asyncio.create_task(self._execute(job_id), name=f"job-{job_id}")

    async def cancel(self, job_id: uuid.UUID) -> None:
        event = self._cancel_events.get(job_id)
        if event is not None:
            await asyncio.to_thread(event.set)
        else:
            self._cancel_before_start.add(job_id)

    async def _execute(self, job_id: uuid.UUID) -> None:
        assert self._slots is not None
        try:
            async with self._slots:
                pool = await self._ensure_pool()
                self._cancel_events[job_id] = await asyncio.to_thread(self._manager.Event)
                if job_id in self._cancel_before_start:
                    self._cancel_events[job_id].set()
                job = await self._mark_running(job_id)
                if job is None:
                    return
                kind = get_kind(job.kind)
                if kind is None:
                    await self._finish(job_id, JobStatus.failed, error=f"unknown job kind {job.kind!r}")
                    return
                started = time.monotonic()
                loop = asyncio.get_running_loop()
                try:
                    result = await loop.run_in_executor(
                        pool,
                        worker.run_job,
                        kind.target,
                        job.params,
                        str(job_id),
                        self._queue,
                        self._cancel_events[job_id],
                    )
                except worker.Cancelled:
                    await self._finish(job_id, JobStatus.cancelled, message="cancelled")
                except BrokenProcessPool:
                    await self._finish(job_id, JobStatus.failed, error="worker process died")
                    self._restart_pool()
                except Exception as exc:
                    await self._finish(job_id, JobStatus.failed, error=f"{type(exc).__name__}: {exc}"[:2000])
                else:
                    await self._succeed(job_id, result)
                finally:
                    metrics.JOB_DURATION.labels(kind=job.kind).observe(time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The pool could not start, the database failed...: the job must end, not stay queued forever.
            log.exception("job_runner_error", job_id=str(job_id))
            try:
                await self._finish(
                    job_id, JobStatus.failed, error=f"job runner error: {type(exc).__name__}: {exc}"[:2000]
                )
            except Exception:
                log.exception("job_runner_error_unrecorded", job_id=str(job_id))
        finally:
            self._tasks.pop(job_id, None)
            self._cancel_events.pop(job_id, None)
            self._last_db_progress.pop(job_id, None)
            self._cancel_before_start.discard(job_id)

    def _restart_pool(self) -> None:
        old = self._pool
        self._pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init_worker,
            max_tasks_per_child=self._max_tasks,
        )
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    async def _mark_running(self, job_id: uuid.UUID) -> Job | None:
        async with self._db.unit_of_work() as uow:
            job = (await uow.session.execute(select(Job).where(Job.id == job_id))).scalar_one_or_none()
            if job is None or job.status != JobStatus.queued.value:
                return None
            job.status = JobStatus.running.value
            job.started_at = self._clock.now()
            payload = job_payload(job)
            uow.after_commit(lambda: self._publish_update(job.owner_id, job_id, payload))
            await uow.commit()
            metrics.JOBS.labels(kind=job.kind, status="running").inc()
            return job

    async def _succeed(self, job_id: uuid.UUID, result: dict[str, Any]) -> None:
        async with self._db.unit_of_work() as uow:
            job = (await uow.session.execute(select(Job).where(Job.id == job_id))).scalar_one()
            kind = get_kind(job.kind)
            uow.publisher = self._publisher
            stored: dict[str, Any] | None = result
            try:
                if kind is not None and kind.on_success is not None:
                    stored = await kind.on_success(uow, job, result)
            except Exception as exc:
                log.exception("job_result_store_failed", job_id=str(job_id))
                await uow.rollback()
                await self._finish(job_id, JobStatus.failed, error=f"storing the result failed: {exc}"[:2000])
                return
            self._apply_final(job, JobStatus.succeeded, result=stored, message="done")
            payload = job_payload(job)
            uow.after_commit(lambda: self._publish_update(job.owner_id, job_id, payload))
            await uow.commit()

    async def _finish(
        self, job_id: uuid.UUID, status: JobStatus, *, error: str | None = None, message: str | None = None
    ) -> None:
        async with self._db.unit_of_work() as uow:
            job = (await uow.session.execute(select(Job).where(Job.id == job_id))).scalar_one_or_none()
            if job is None or JobStatus(job.status) in TERMINAL_STATUSES:
                return
            self._apply_final(job, status, error=error, message=message)
            kind = get_kind(job.kind)
            if kind is not None and kind.on_end is not None:
                uow.publisher = self._publisher
                try:
                    async with uow.session.begin_nested():  # a failing hook must not keep the job unfinished
                        await kind.on_end(uow, job)
                except Exception:
                    log.exception("job_end_hook_failed", job_id=str(job_id))
            payload = job_payload(job)
            uow.after_commit(lambda: self._publish_update(job.owner_id, job_id, payload))
            await uow.commit()

    def _apply_final(
        self,
        job: Job,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        job.status = status.value
        job.finished_at = self._clock.now()
        if status == JobStatus.succeeded:
            job.progress = 1.0
        job.result = result
        job.error = error
        job.message = message or job.message
        metrics.JOBS.labels(kind=job.kind, status=status.value).inc()

    async def _publish_update(self, owner_id: uuid.UUID, job_id: uuid.UUID, payload: dict[str, Any]) -> None:
        await self._publisher.publish("job_update", {"job": payload}, f"job:{job_id}")
        await self._publisher.publish("job_update", {"job": payload}, f"user:{owner_id}")

    def _read_progress(self) -> None:
        """Thread: drain the manager queue and hand progress to the event loop."""
        while True:
            try:
                item = self._queue.get()
            except (EOFError, OSError, BrokenPipeError):
                return
            if item is None:
                return
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._on_progress, *item)

    def _on_progress(self, job_id_str: str, fraction: float, message: str) -> None:
        job_id = uuid.UUID(job_id_str)
        if job_id not in self._tasks:
            return
        self._spawn(
            self._publisher.publish(
                "job_progress",
                {"job_id": job_id_str, "progress": fraction, "message": message},
                f"job:{job_id}",
            )
        )
        now = time.monotonic()
        if now - self._last_db_progress.get(job_id, 0.0) >= PROGRESS_DB_INTERVAL_S or fraction >= 1.0:
            self._last_db_progress[job_id] = now
            self._spawn(self._store_progress(job_id, fraction, message))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _store_progress(self, job_id: uuid.UUID, fraction: float, message: str) -> None:
        try:
            async with self._db.unit_of_work() as uow:
                await uow.session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.running.value)
                    .values(progress=fraction, message=message)
                )
                await uow.commit()
        except Exception:
            log.exception("job_progress_store_failed", job_id=str(job_id))
