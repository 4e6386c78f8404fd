"""Application factory: ``create_app(settings)`` returns ``socketio.ASGIApp(sio, fastapi_app)``.

The lifespan wires the database, the job runner, the Socket.IO gateway and the domain services, and tears them
down in reverse order. ``aaiti.app:app`` builds the app from the environment for ``uvicorn aaiti.app:app``.
"""

from __future__ import annotations

import gc
import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import socketio
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from aaiti.api import mount_api
from aaiti.auth.security import PasswordHasher, TokenCodec
from aaiti.auth.service import AuthService, RateRules
from aaiti.core.clock import Clock, SystemClock
from aaiti.core.config import ConfigError, Settings, resolve_secrets
from aaiti.core.context import CoreComponents
from aaiti.core.db.session import Database
from aaiti.core.errors import AppError, Unauthorized
from aaiti.core.observability.logging import configure_logging
from aaiti.core.observability.middleware import HttpHygieneMiddleware
from aaiti.core.principal import Principal
from aaiti.core.ratelimit import RateLimiter
from aaiti.core.realtime.server import SocketGateway, SocketIdentity
from aaiti.core.tasks import service as job_service
from aaiti.core.tasks.runner import LocalTaskRunner
from aaiti.market.runtime import market_runtime
from aaiti.ml.service import ml_runtime
from aaiti.spa import SPAStaticFiles, not_built, static_dir

log = structlog.get_logger("aaiti.app")

DomainRuntime = Callable[[CoreComponents, SocketGateway, Any], AbstractAsyncContextManager[None]]
"""A domain's background services (feed, bot supervisor): started after core, stopped before it."""
DOMAIN_RUNTIMES: list[DomainRuntime] = [market_runtime, ml_runtime]
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.detail, exc.headers or None, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", ""))[:300],
                "type": e.get("type"),
            }
            for e in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
        return _error(422, "invalid", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return _error(exc.status_code, code, detail, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return _error(500, "internal", "internal error", request_id=request_id)


def _metrics_allowed(request: Request, token: str | None) -> bool:
    if token and request.headers.get("authorization") == f"Bearer {token}":
        return True
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in LOOPBACK)


def build_fastapi(settings: Settings, gateway: SocketGateway, clock: Clock) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.database.url,
            synchronous=settings.database.synchronous,
            busy_timeout_ms=settings.database.busy_timeout_ms,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        limiter = RateLimiter(settings.redis_url)
        runner = LocalTaskRunner(
            db,
            gateway,
            clock,
            workers=settings.jobs.effective_workers(),
            max_tasks_per_child=settings.jobs.max_tasks_per_child,
        )
        core = CoreComponents(settings=settings, db=db, clock=clock, limiter=limiter, publisher=gateway, runner=runner)
        auth = create_auth_service(settings, clock=clock, limiter=limiter)
        app.state.core = core
        app.state.auth = auth
        app.state.gateway = gateway
        _wire_sockets(gateway, core, auth)
        await _bootstrap_admin(settings, core, auth)
        await runner.start()
        await gateway.start()
        try:
            async with AsyncExitStack() as domains:
                for runtime in DOMAIN_RUNTIMES:
                    await domains.enter_async_context(runtime(core, gateway, app.state))
                # Start-up objects (modules, settings, pools) never die: keep them out of every later GC pass,
                # which otherwise shows up as tail latency under load.
                gc.collect()
                gc.freeze()
                log.info("started", env=settings.env, database=db.dialect, workers=settings.jobs.effective_workers())
                yield
        finally:
            await gateway.stop()
            await runner.stop()
            await db.dispose()
            log.info("stopped")

    app = FastAPI(
        title="aaiti",
        version="0.1.0",
        lifespan=lifespan,
        description="Auto AI Trading Interface: real market data, honest models, reproducible backtests.",
        docs_url="/docs" if settings.api_docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
        # Metrics are Prometheus (our middleware); FastAPI's native OpenTelemetry hooks would only cost a
        # provider check on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    _install_error_handlers(app)
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            max_age=600,
        )
    mount_api(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not _metrics_allowed(request, settings.server.metrics_token):
            raise Unauthorized("metrics are served to loopback or with the metrics token")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    folder = static_dir(settings.server.static_dir)
    if folder is not None:
        app.mount("/", SPAStaticFiles(directory=folder, html=True), name="spa")
    else:
        app.add_api_route("/", not_built, include_in_schema=False)
    return app


def create_auth_service(
    settings: Settings, *, clock: Clock | None = None, limiter: RateLimiter | None = None
) -> AuthService:
    codec = TokenCodec(
        secret=settings.jwt_key(),
        previous_secrets=settings.jwt_previous_keys(),
        issuer=settings.auth.issuer,
        audience=settings.auth.audience,
        access_ttl_s=settings.auth.access_ttl_s,
        leeway_s=settings.auth.leeway_s,
    )
    # Key ids are fingerprints, not keys: logging them lets an operator confirm a rotation took effect.
    log.info("jwt_keys", signing_kid=codec.kid, accepted_kids=list(codec.key_ids))
    return AuthService(
        hasher=PasswordHasher(
            memory_kib=settings.auth.argon2_memory_kib,
            time_cost=settings.auth.argon2_time_cost,
            parallelism=settings.auth.argon2_parallelism,
            concurrency=settings.auth.hash_concurrency,
        ),
        codec=codec,
        clock=clock or SystemClock(),
        limiter=limiter or RateLimiter(settings.redis_url),
        refresh_ttl_s=settings.auth.refresh_ttl_s,
        rules=RateRules(
            settings.auth.login_max_per_account, settings.auth.login_max_per_ip, settings.auth.login_window_s
        ),
    )


def _wire_sockets(gateway: SocketGateway, core: CoreComponents, auth: AuthService) -> None:
    async def authenticate(token: str) -> SocketIdentity:
        claims = auth.codec.decode_access(token)
        principal, _ = await auth.authenticate(core.db.fast, claims)
        return SocketIdentity(principal, claims.token_version, claims.expires_at)

    async def still_valid(pairs: list[tuple[uuid.UUID, int]]) -> set[uuid.UUID]:
        async with core.db.read() as session:
            return await auth.invalid_sessions(session, pairs)

    async def own_job(principal: Principal, ident: str) -> bool:
        try:
            job_id = uuid.UUID(ident)
        except ValueError:
            return False
        async with core.db.read() as session:
            try:
                await job_service.get_owned(session, principal, job_id)
            except AppError:
                return False
        return True

    gateway.configure_auth(authenticate, still_valid)
    gateway.register_room("job", own_job)


async def _bootstrap_admin(settings: Settings, core: CoreComponents, auth: AuthService) -> None:
    if not (settings.admin_email and settings.admin_password):
        return
    async with core.db.unit_of_work() as uow:
        _, created = await auth.ensure_admin(
            uow.session, settings.admin_email, settings.admin_password.get_secret_value()
        )
        await uow.commit()
    if created:
        log.info("admin_created", email=settings.admin_email)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> socketio.ASGIApp:
    settings = settings or Settings()
    configure_logging(level=settings.log.level, json_logs=settings.json_logs)
    generated = resolve_secrets(settings)
    if generated:
        log.warning("dev_secret_generated", detail=generated)
    clock = clock or SystemClock()
    gateway = SocketGateway(cors_origins=settings.server.cors_origins, clock=clock)
    fastapi_app = build_fastapi(settings, gateway, clock)
    asgi = socketio.ASGIApp(
        gateway.sio,
        other_asgi_app=HttpHygieneMiddleware(fastapi_app, max_body_bytes=settings.server.max_body_bytes),
    )
    asgi.fastapi = fastapi_app
    return asgi


def __getattr__(name: str) -> Any:
    """``uvicorn aaiti.app:app`` builds the app lazily from the environment."""
    if name == "app":
        try:
            return create_app()
        except ConfigError as exc:
            raise SystemExit(f"configuration error: {exc}") from None
    raise AttributeError(name)
