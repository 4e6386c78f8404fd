"""Domain-neutral errors with one mapping to HTTP, Socket.IO and job outcomes.

Services raise these; the HTTP layer turns them into ``{"error": code, "detail": message}`` with the status
below, the socket layer into an error ack, and the job runner into a failed job with the message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base class: ``code`` is a stable machine-readable string, ``status`` the HTTP status."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class Invalid(AppError):
    """The request is well-formed but its content is not acceptable (422)."""

    code = "invalid"
    status = 422


class Unauthorized(AppError):
    code = "unauthorized"
    status = 401


class Forbidden(AppError):
    code = "forbidden"
    status = 403


class NotFound(AppError):
    """Missing, or owned by someone else: the two are indistinguishable on purpose (no existence leak)."""

    code = "not_found"
    status = 404


class Conflict(AppError):
    code = "conflict"
    status = 409


class TooManyRequests(AppError):
    code = "rate_limited"
    status = 429

    def __init__(self, detail: str, *, retry_after: float, extra: dict[str, Any] | None = None):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(detail, headers={"Retry-After": str(seconds)}, extra=extra)
        self.retry_after = seconds


class Unavailable(AppError):
    """A dependency (data source, worker pool, database) cannot serve right now (503)."""

    code = "unavailable"
    status = 503
