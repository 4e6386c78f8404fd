"""The child-process side of the job runner.

Job functions have the signature ``fn(params: dict, ctx: JobContext) -> dict`` and must be importable by
``"module:function"`` path. They run in a spawned worker process with one BLAS/OpenMP/torch thread, report
progress through ``ctx.report(fraction, message)`` and call ``ctx.check_cancelled()`` at safe points
(cooperative cancellation: a running process cannot be stopped from outside without losing its state).

This module imports neither the database nor the real-time layer, and nothing heavy at import time.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PROGRESS_MIN_INTERVAL_S = 0.2


class Cancelled(Exception):
    """Raised inside a job when cancellation was requested."""


class _Event(Protocol):
    def is_set(self) -> bool: ...


class _Queue(Protocol):
    def put(self, item: Any) -> None: ...


class JobContext:
    def __init__(self, job_id: str, queue: _Queue | None, cancel_event: _Event | None) -> None:
        self.job_id = job_id
        self._queue = queue
        self._cancel = cancel_event
        self._last_report = 0.0

    def report(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Publish progress in [0, 1]; rate-limited unless ``force`` (the final report of a phase)."""
        now = time.monotonic()
        if self._queue is None or (not force and now - self._last_report < PROGRESS_MIN_INTERVAL_S):
            return
        self._last_report = now
        self._queue.put((self.job_id, min(1.0, max(0.0, float(fraction))), message[:500]))

    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled("cancelled by request")


def init_worker() -> None:
    """Pool initializer: one thread per worker (oversubscription made ARIMA 12-20x slower here)."""
    for name in THREAD_ENV:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def resolve(target: str) -> Callable[[dict[str, Any], JobContext], dict[str, Any]]:
    module_name, _, attr = target.partition(":")
    fn: Callable[[dict[str, Any], JobContext], dict[str, Any]] = getattr(importlib.import_module(module_name), attr)
    return fn


def run_job(
    target: str, params: dict[str, Any], job_id: str, queue: _Queue | None, cancel_event: _Event | None
) -> dict[str, Any]:
    """Entry point executed in the worker process."""
    if "torch" in target or os.environ.get("AAITI_WORKER_TORCH"):
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
    ctx = JobContext(job_id, queue, cancel_event)
    ctx.check_cancelled()
    return resolve(target)(params, ctx)


def selftest(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A diagnostic job: counts ``steps`` steps of ``step_seconds`` each, reporting progress and honouring
    cancellation. Proves the runner end to end (progress, cancel, restart recovery) with no domain code."""
    steps = int(params["steps"])
    pause = float(params["step_seconds"])
    total = 0
    for i in range(steps):
        ctx.check_cancelled()
        time.sleep(pause)
        total += i
        ctx.report((i + 1) / steps, f"step {i + 1}/{steps}", force=True)
    return {"steps": steps, "sum": total, "pid": os.getpid()}
