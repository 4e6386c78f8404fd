"""The core components the lifespan builds and the HTTP/socket layers read from ``app.state.core``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aaiti.core.clock import Clock
from aaiti.core.config import Settings
from aaiti.core.db.session import Database
from aaiti.core.ratelimit import RateLimiter
from aaiti.core.realtime.publisher import Publisher
from aaiti.core.tasks.runner import TaskRunner


@dataclass(slots=True)
class CoreComponents:
    settings: Settings
    db: Database
    clock: Clock
    limiter: RateLimiter
    publisher: Publisher
    runner: TaskRunner
    ready_checks: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)
    """Extra readiness checks domains register (name -> coroutine returning a CheckResult)."""
