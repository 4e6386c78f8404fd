"""Settings: pydantic-settings with the ``AAITI_`` prefix, nested sections (``AAITI_AUTH__JWT_SECRET``) and ``.env``.

Secrets policy: outside dev mode the JWT secret must be given and be at least 32 bytes of entropy; a known
default is refused. In dev mode (the default of ``make run``) a secret is generated once and persisted under
``var_dir`` with 0600 permissions.

Secret files (docs/secrets.md): every setting in :data:`SECRET_SETTINGS` can instead be read from a file, either
named explicitly by ``<VARIABLE>_FILE`` (``AAITI_AUTH__JWT_SECRET_FILE=/run/secrets/jwt_secret``) or found in
``AAITI_SECRETS_DIR`` under the variable's name without the prefix, lower case (``auth__jwt_secret``). One
trailing newline is removed. Outside dev mode a file that other users may read or write is refused. Error
messages name variables and paths, never values.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any, Literal

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
MAX_SECRET_FILE_BYTES = 65_536

# (section or None for top level, field, kind) of every setting that may hold a secret. kind "secret" is stored
# as SecretStr, "secrets" as a list of SecretStr (one per non-blank line of the file), "text" as a plain str
# (fields other code reads as str; they are kept out of repr instead).
SECRET_SETTINGS: tuple[tuple[str | None, str, Literal["secret", "secrets", "text"]], ...] = (
    ("auth", "jwt_secret", "secret"),
    ("auth", "jwt_previous_secrets", "secrets"),
    ("database", "url", "text"),
    ("database", "password", "secret"),
    ("market", "coingecko_api_key", "secret"),
    ("server", "metrics_token", "text"),
    (None, "admin_password", "secret"),
    (None, "redis_url", "text"),
)


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the process must not start."""


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="Exact origins allowed by CORS and Socket.IO")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Request body cap; larger bodies get 413")
    static_dir: Path | None = Field(None, description="Built SPA folder; defaults to the package's static/dist")
    docs_enabled: bool | None = Field(
        None,
        description="Serve /docs and /openapi.json; unset: on in dev and test, off in production (RELIABILITY AC-05)",
    )
    metrics_token: str | None = Field(
        None, repr=False, description="Bearer token for /metrics from non-loopback scrapers"
    )
    metrics_token_file: Path | None = None

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: list[str]) -> list[str]:
        for origin in v:
            if origin.strip() in {"*", "null"}:
                raise ValueError("CORS origins must be an exact allowlist ('*' and 'null' are refused)")
        return v


class DatabaseSettings(BaseModel):
    url: str = Field(
        "", repr=False, description="SQLAlchemy async URL; empty = sqlite+aiosqlite under var_dir/aaiti.db"
    )
    url_file: Path | None = None
    password: SecretStr | None = Field(
        None, description="Server database password, put into the URL (which must then carry none)"
    )
    password_file: Path | None = None
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
    jwt_secret_file: Path | None = None
    jwt_previous_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Former signing keys still accepted for verification during a rotation (never used to sign)",
    )
    jwt_previous_secrets_file: Path | None = None
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
    coingecko_api_key_file: Path | None = None
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
    secrets_dir: Path | None = Field(None, description="Folder of secret files named like auth__jwt_secret")
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    admin_password_file: Path | None = None
    redis_url: str | None = Field(None, repr=False)
    redis_url_file: Path | None = None
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    jobs: JobSettings = JobSettings()
    market: MarketSettings = MarketSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # ConfigError (not ValueError) so it is not wrapped into a ValidationError that would echo the input.
        _load_secret_files(self)
        if not self.database.url:
            self.database.url = f"sqlite+aiosqlite:///{(self.var_dir / 'aaiti.db').as_posix()}"
        if self.database.password is not None:
            self.database.url = _with_password(self.database.url, self.database.password.get_secret_value())
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def api_docs_enabled(self) -> bool:
        """The interactive API docs are public pages: off in production unless asked for."""
        if self.server.docs_enabled is not None:
            return self.server.docs_enabled
        return self.env != "production"

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

    def jwt_previous_keys(self) -> tuple[str, ...]:
        """Former signing keys, accepted for verification only (see docs/secrets.md, rotation)."""
        return tuple(s.get_secret_value() for s in self.auth.jwt_previous_secrets)


def env_name(section: str | None, field: str) -> str:
    return ("AAITI_" + (f"{section}__" if section else "") + field).upper()


def read_secret_file(path: Path, *, variable: str, allow_shared: bool) -> str:
    """The text of a secret file without one trailing newline.

    Raises :class:`ConfigError` when the file is unreadable, not a regular file, larger than 64 KiB, not UTF-8, or
    (unless ``allow_shared``, i.e. dev mode) readable or writable by other users. Messages never contain the value.
    """
    try:
        # O_NONBLOCK: a FIFO put where a secret belongs must not hang the start-up. The mode is taken from the
        # open descriptor, so the file checked is the file read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{variable}: {path} is not a regular file")
            if mode & (stat.S_IROTH | stat.S_IWOTH) and not allow_shared:
                raise ConfigError(
                    f"{variable}: {path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                    "make it readable by the service user only, e.g. chmod 0400 (or 0440 with a dedicated group)"
                )
            data = b""
            while len(data) <= MAX_SECRET_FILE_BYTES and (chunk := os.read(fd, MAX_SECRET_FILE_BYTES + 1)):
                data += chunk
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"{variable}: {path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path} is not UTF-8 text") from None
    # Exactly one newline: editors and `echo` add one; anything else is part of the secret.
    if text.endswith("\n"):
        text = text[:-1].removesuffix("\r")
    return text


def _has_value(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value not in (None, "", [])


def _load_secret_files(settings: Settings) -> None:
    """Fill secret settings from ``*_FILE`` paths or ``secrets_dir``; a value given directly wins over the folder.

    Both a value and its ``_FILE`` is a configuration mistake and refused (which one was meant is unknowable)."""
    folder = settings.secrets_dir
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"AAITI_SECRETS_DIR: {folder} is not a directory")
    for section_name, field, kind in SECRET_SETTINGS:
        section: BaseModel = getattr(settings, section_name) if section_name else settings
        variable = env_name(section_name, field)
        explicit: Path | None = getattr(section, f"{field}_file")
        given = _has_value(getattr(section, field))
        if explicit is not None:
            if given:
                raise ConfigError(f"set {variable} or {variable}_FILE, not both")
            path, label = explicit, f"{variable}_FILE"
        elif folder is not None and not given:
            path, label = folder / variable.removeprefix("AAITI_").lower(), variable
            if not os.path.lexists(path):
                continue
        else:
            continue
        text = read_secret_file(path, variable=label, allow_shared=settings.is_dev)
        if kind == "secrets":
            setattr(section, field, [SecretStr(line) for line in text.splitlines() if line.strip()])
            continue
        if not text.strip():
            raise ConfigError(f"{label}: {path} is empty")
        setattr(section, field, SecretStr(text) if kind == "secret" else text)


def _with_password(url: str, password: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("AAITI_DATABASE__URL is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        raise ConfigError("AAITI_DATABASE__PASSWORD applies to server databases, not SQLite")
    if parsed.password is not None:
        raise ConfigError("AAITI_DATABASE__PASSWORD is set and AAITI_DATABASE__URL already carries a password")
    return parsed.set(password=password).render_as_string(hide_password=False)


def check_secret_strength(secret: str, variable: str = "AAITI_AUTH__JWT_SECRET") -> None:
    if secret.strip().lower() in KNOWN_WEAK_SECRETS:
        raise ConfigError(
            f"{variable} is a known default; generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{variable} must be at least {MIN_SECRET_BYTES} bytes")
    if len(set(secret)) < 10:
        raise ConfigError(f"{variable} has too little variety to be random")


def resolve_secrets(settings: Settings) -> str | None:
    """Validate or (dev only) create the JWT secret. Returns a log message when a secret was generated.

    Raises :class:`ConfigError` for a missing, short or known-default secret outside dev mode, and for a previous
    secret (``auth.jwt_previous_secrets``) that would not pass as a current one.
    """
    for index, previous in enumerate(settings.auth.jwt_previous_secrets):
        check_secret_strength(previous.get_secret_value(), f"AAITI_AUTH__JWT_PREVIOUS_SECRETS[{index}]")
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
