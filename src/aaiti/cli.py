"""The ``aaiti`` command: ``serve``, ``migrate``, ``create-admin``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from aaiti.core.config import ConfigError, Settings


def migrations_dir() -> Path:
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if (source_tree / "env.py").is_file():
        return source_tree
    return Path(__file__).resolve().parent / "_migrations"


def alembic_config(url: str | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["configure_logger"] = False
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    settings = Settings()
    command.upgrade(alembic_config(url or settings.database.url), revision)  # type: ignore[arg-type]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    if not args.no_migrate:
        migrate(settings.database.url)
    uvicorn.run(
        "aaiti.app:app",
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=20,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
    )
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from aaiti.app import create_auth_service
    from aaiti.core.db.session import Database

    settings = Settings()
    password = args.password or os.environ.get("AAITI_ADMIN_PASSWORD") or getpass.getpass("Admin password: ")

    async def run() -> tuple[bool, str]:
        migrate(settings.database.url)
        db = Database(settings.database.url, synchronous=settings.database.synchronous)
        try:
            auth = create_auth_service(settings)
            async with db.unit_of_work() as uow:
                user, created = await auth.ensure_admin(uow.session, args.email, password)
                await uow.commit()
                return created, user.email
        finally:
            await db.dispose()

    created, email = asyncio.run(run())
    print(f"admin {email} {'created' if created else 'already exists (unchanged)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aaiti", description="Auto AI Trading Interface")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then run API + Socket.IO + dashboard + feed + workers")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-migrate", action="store_true")
    mig = sub.add_parser("migrate", help="upgrade the database schema")
    mig.add_argument("revision", nargs="?", default="head")
    admin = sub.add_parser("create-admin", help="create the first administrator")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="omit to be prompted (or set AAITI_ADMIN_PASSWORD)")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "migrate":
            migrate(revision=args.revision)
            print("database at", args.revision)
            return 0
        if args.command == "create-admin":
            return _create_admin(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a clean message, not a traceback, for operator mistakes (e.g. a weak password)
        from aaiti.core.errors import AppError

        if isinstance(exc, AppError):
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        raise
    return 1
