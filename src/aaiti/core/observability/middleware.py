"""Pure ASGI middleware: request id, structured request log, security headers, body-size cap.

One request log line per HTTP request: method, route path without the query string (tokens never appear in
logs), status, duration, request id and the user id bound by authentication.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from aaiti.core.observability import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("aaiti.http")
SLOW_REQUEST_S = 1.0
SECURITY_STATUSES = {
    400: "validation_failed",
    401: "authentication_failed",
    403: "authorization_failed",
    413: "validation_failed",
    422: "validation_failed",
    429: "rate_limited",
}
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SPA_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/jobs/{job_id}``), never the raw path (bounded labels).

    FastAPI >= 0.16x includes routers lazily and keeps the full, prefixed template in its effective route
    context; ``scope["route"]`` alone lacks the include prefix."""
    fastapi_scope = scope.get("fastapi")
    context = fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    template = getattr(context, "path_format", None) or getattr(context, "path", None)
    if not template:
        template = getattr(scope.get("route"), "path", None)
    return template or "unmatched"


@functools.cache
def _counter(template: str, method: str, status: int) -> Any:
    """Label children cached: the label sets are bounded (templates x methods x statuses)."""
    return metrics.HTTP_REQUESTS.labels(handler=template, method=method, status=str(status))


@functools.cache
def _histogram(template: str, method: str) -> Any:
    return metrics.HTTP_LATENCY.labels(handler=template, method=method)


def _is_api(path: str) -> bool:
    return path.startswith("/api") or path == "/metrics" or path.startswith("/socket.io")


_COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_DOCS_HEADERS = (*_COMMON_HEADERS, (b"content-security-policy", DOCS_CSP.encode()))
_API_HEADERS = (*_COMMON_HEADERS, (b"content-security-policy", API_CSP.encode()), (b"cache-control", b"no-store"))
_SPA_HEADERS = (*_COMMON_HEADERS, (b"content-security-policy", SPA_CSP.encode()))


def _security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response gets, by kind of path (built once: this runs on every request)."""
    if path in {"/docs", "/redoc", "/docs/oauth2-redirect"}:
        return _DOCS_HEADERS
    if _is_api(path) or path == "/openapi.json":
        return _API_HEADERS
    return _SPA_HEADERS


async def _send_json(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class BodyTooLarge(Exception):
    pass


class HttpHygieneMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        incoming = dict(scope.get("headers") or [])
        given = incoming.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        # Each request runs in its own task (own context copy), so nothing from another request is bound here.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        extra = [*_security_headers(path), (b"x-request-id", request_id.encode())]
        started = time.perf_counter()
        status_holder = {"status": 500}

        length = incoming.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                too_big = True
            if too_big:
                await _send_json(
                    send,
                    413,
                    {
                        "error": "payload_too_large",
                        "detail": f"request body exceeds {self.max_body_bytes} bytes",
                    },
                    extra,
                )
                self._log(scope, 413, started)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder["status"] = message["status"]
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not response_started:
                await _send_json(
                    send,
                    413,
                    {
                        "error": "payload_too_large",
                        "detail": f"request body exceeds {self.max_body_bytes} bytes",
                    },
                    extra,
                )
            status_holder["status"] = 413
        except Exception:
            # Starlette re-raises after its 500 handler answered (so servers can log it); the handler already
            # logged it once with the request id, so an answered error stops here.
            if not response_started:
                raise
        finally:
            self._log(scope, status_holder["status"], started)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        template = route_template(scope)
        method = scope.get("method", "")
        if method not in KNOWN_METHODS:
            method = "other"
        _counter(template, method, status).inc()
        _histogram(template, method).observe(elapsed)
        # Successful fast requests log at DEBUG (a line per request costs ~10% of throughput); errors and slow
        # requests at INFO. The metrics above count every request either way.
        fields: dict[str, Any] = {
            "method": method,
            "path": scope.get("path"),
            "route": template,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        if status < 400 and elapsed < SLOW_REQUEST_S:
            log.debug("http_request", **fields)
            return
        refused = SECURITY_STATUSES.get(status)
        if refused is not None:
            # RELIABILITY LOG-01: refusals are security events; the request id and user id are bound already.
            client = scope.get("client")
            fields["security_event"] = refused
            fields["client_ip"] = client[0] if client else None
        log.info("http_request", **fields)
