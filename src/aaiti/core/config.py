"""Settings: pydantic-settings with the ``AAITI_`` prefix, nested sections (``AAITI_AUTH__JWT_SECRET``) and ``.env``.

Secrets policy: outside dev mode the JWT secret must be given and be at least 32 bytes of entropy; a known
default is refused. In dev mode (the default of ``make run``) a secret is generated once and persisted under
``var_dir`` with 0600 permissions.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KNOWN_WEAK_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "secret",
        "super-secret",
        "supersecret",
        "jwt-secret",
        "your-secret-key",
        "your-secret-key-here",
        "aaiti",
        "default",
        "development",
        "password",
    }
)
MIN_SECRET_BYTES = 32
SECRET_FILE_NAME = "jwt_secret"  # noqa: S105  (a file name, not a secret)


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the process must not start."""


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="Exact origins allowed by CORS and Socket.IO")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Request body cap; larger bodies get 413")
    static_dir: Path | None = Field(None, description="Built SPA folder; defaults to the package's static/dist")
    docs_enabled: bool = True
    metrics_token: str | None = Field(None, description="Bearer token for /metrics from non-loopback scrapers")

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: list[str]) -> list[str]:
        for origin in v:
            if origin.strip() in {"*", "null"}:
                raise ValueError("CORS origins must be an exact allowlist ('*' and 'null' are refused)")
        return v


class DatabaseSettings(BaseModel):
    url: str = Field("", description="SQLAlchemy async URL; empty = sqlite+aiosqlite under var_dir/aaiti.db")
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "FULL",
        description="SQLite synchronous pragma. FULL: an acknowledged commit survives power loss (orders, "
        "audit). NORMAL survives process crashes only.",
    )
    busy_timeout_ms: int = Field(15_000, ge=0)
    pool_size: int = Field(10, ge=1)
    echo: bool = False


class AuthSettings(BaseModel):
    jwt_secret: SecretStr | None = None
    issuer: str = "aaiti"
    audience: str = "aaiti-api"
    access_ttl_s: int = Field(900, ge=60, le=900, description="Access token lifetime (at most 15 minutes)")
    refresh_ttl_s: int = Field(7 * 86_400, ge=3600, le=90 * 86_400, description="Absolute refresh lifetime")
    leeway_s: int = Field(10, ge=0, le=60)
    login_max_per_account: int = Field(10, ge=1, description="Login/refresh attempts per account per window")
    login_max_per_ip: int = Field(30, ge=1, description="Login/refresh attempts per client IP per window")
    login_window_s: int = Field(60, ge=1)
    hash_concurrency: int = Field(2, ge=1, description="Concurrent argon2 hashes (64 MiB each)")
    argon2_memory_kib: int = Field(19_456, ge=19_456, description="argon2id memory cost (ASVS minimum 19 MiB)")
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)
    registration_open: bool = True


class JobSettings(BaseModel):
    workers: int = Field(0, ge=0, description="Worker processes; 0 = cores-1 (at least 1)")
    max_tasks_per_child: int = Field(50, ge=1)
    max_concurrent_per_user: int = Field(2, ge=1)

    def effective_workers(self) -> int:
        return self.workers or max(1, (os.cpu_count() or 2) - 1)


class MarketSettings(BaseModel):
    source: Literal["coingecko", "replay", "auto"] = "auto"
    coingecko_base_url: str = "https://api.coingecko.com/api/v3"
    coingecko_key_kind: Literal["none", "demo", "pro"] = "none"
    coingecko_api_key: SecretStr | None = None
    calls_per_minute: int = Field(10, ge=1, le=1000, description="Upstream budget (keyless tier is ~5-15/min)")
    poll_interval_s: float = Field(30.0, ge=0.05, le=3600)
    replay_bar_seconds: float = Field(1.0, gt=0, description="Wall seconds per replayed bar")
    symbols: list[str] = Field(default_factory=lambda: ["BTC", "ETH", "LTC"])
    load_bundled: bool = True


class LogSettings(BaseModel):
    level: str = "INFO"
    json_logs: bool | None = Field(None, description="JSON lines; default: on in production, off in dev")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AAITI_", env_nested_delimiter="__", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["dev", "production", "test"] = "production"
    var_dir: Path = Path("var")
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    redis_url: str | None = None
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    jobs: JobSettings = JobSettings()
    market: MarketSettings = MarketSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database.url:
            self.database.url = f"sqlite+aiosqlite:///{(self.var_dir / 'aaiti.db').as_posix()}"
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def json_logs(self) -> bool:
        return self.log.json_logs if self.log.json_logs is not None else not self.is_dev

    @property
    def is_sqlite(self) -> bool:
        return self.database.url.startswith("sqlite")

    def jwt_key(self) -> str:
        if self.auth.jwt_secret is None:
            raise ConfigError("JWT secret is not resolved; call resolve_secrets() first")
        return self.auth.jwt_secret.get_secret_value()


def check_secret_strength(secret: str) -> None:
    if secret.strip().lower() in KNOWN_WEAK_SECRETS:
        raise ConfigError(
            "AAITI_AUTH__JWT_SECRET is a known default; generate one: python -c "
            "'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"AAITI_AUTH__JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    if len(set(secret)) < 10:
        raise ConfigError("AAITI_AUTH__JWT_SECRET has too little variety to be random")


def resolve_secrets(settings: Settings) -> str | None:
    """Validate or (dev only) create the JWT secret. Returns a log message when a secret was generated.

    Raises :class:`ConfigError` for a missing, short or known-default secret outside dev mode.
    """
    if settings.auth.jwt_secret is not None:
        check_secret_strength(settings.auth.jwt_secret.get_secret_value())
        return None
    if not settings.is_dev:
        raise ConfigError("AAITI_AUTH__JWT_SECRET is required outside dev mode (>= 32 random bytes)")
    path = settings.var_dir / SECRET_FILE_NAME
    if path.exists():
        secret = path.read_text().strip()
        check_secret_strength(secret)
        settings.auth.jwt_secret = SecretStr(secret)
        return None
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    settings.auth.jwt_secret = SecretStr(secret)
    return f"generated a dev JWT secret at {path} (mode 0600)"
