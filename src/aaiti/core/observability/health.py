"""Readiness check results, free of web-framework types so domains can register checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


ReadyCheck = Callable[[], Awaitable[CheckResult]]
