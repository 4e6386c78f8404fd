"""The ``aaiti`` command: ``serve``, ``migrate``, ``create-admin``, ``import-candles``, ``audit-verify`` ..."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from aaiti.core.config import ConfigError, Settings, resolve_secrets


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
        # The stdlib loop, not uvloop: under load uvloop served a few keep-alive connections late (p99 230-290 ms
        # against 32-36 ms with asyncio, same throughput; bench/api.py).
        loop="asyncio",
    )
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from aaiti.app import create_auth_service
    from aaiti.core.db.session import Database

    settings = Settings()
    resolve_secrets(settings)  # the same key checks as `serve` (dev mode creates the key the server will use)
    configured = settings.admin_password.get_secret_value() if settings.admin_password else None
    password = args.password or configured or getpass.getpass("Admin password: ")

    migrate(settings.database.url)  # alembic runs its own event loop: before ours, not inside it

    async def run() -> tuple[bool, str]:
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


def _import_candles(args: argparse.Namespace) -> int:
    """Validate and store a ``timestamp_ms,open,high,low,close,volume`` CSV (audited, like the API import)."""
    from aaiti.core.audit import AuditContext
    from aaiti.core.clock import SystemClock
    from aaiti.core.db.session import Database
    from aaiti.core.errors import Invalid
    from aaiti.market.service import ImportReport, check_import_source, import_csv

    check_import_source(args.source)
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    settings = Settings()
    migrate(settings.database.url)

    async def run() -> ImportReport:
        db = Database(settings.database.url, synchronous=settings.database.synchronous)
        try:
            async with db.unit_of_work() as uow:
                report = await import_csv(
                    uow,
                    AuditContext(user_agent="aaiti-cli"),
                    SystemClock(),
                    text=text,
                    symbol=args.symbol,
                    timeframe=args.timeframe,
                    source=args.source,
                    via="cli",
                )
                await uow.commit()
                return report
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except Invalid as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        for row in exc.extra.get("rejected", [])[:20]:
            print(f"  line {row['line']}: {row['reason']}", file=sys.stderr)
        return 2
    result = report.result
    print(
        f"imported {result.accepted_count} {report.timeframe} candles of {report.symbol} as source "
        f"{report.source!r} ({report.written} rows written); {result.rejected_count} rows rejected"
    )
    for row in result.rejected[:20]:
        print(f"  line {row.line}: {row.reason}", file=sys.stderr)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    """Recompute the audit hash chain (read-only: no migration is run); exit 0 when it holds, 1 when not."""
    from aaiti.core.audit import ChainReport, verify_audit_chain
    from aaiti.core.db.session import Database

    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    anchor: tuple[int, str] | None = None
    if args.expect:
        seq, _, digest = args.expect.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            print("error: --expect takes SEQ:HASH (a seq and a 64-digit hex hash)", file=sys.stderr)
            return 2
        anchor = (int(seq), digest)
    settings = Settings()

    async def run() -> ChainReport:
        db = Database(settings.database.url, synchronous=settings.database.synchronous)
        try:
            async with db.read() as session:
                return await verify_audit_chain(session, batch_size=args.batch_size, anchor=anchor)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    print(report.describe())
    return 0 if report.ok else 1


def _epoch_ms(text: str | None) -> int | None:
    """``2020-01-31`` / ``2020-01-31T12:00`` (UTC) or epoch milliseconds."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(text)
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)


def _train(args: argparse.Namespace) -> int:
    """Train one model in this process (one BLAS/torch thread, as in the workers) and print its report."""
    import json
    import time

    from aaiti.core.tasks.worker import init_worker

    init_worker()
    from aaiti.ml.estimators.base import Cancelled, FitFailed
    from aaiti.ml.tasks import json_safe, metrics_report
    from aaiti.ml.training import train

    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        print(f"error: --params is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print("error: --params must be a JSON object", file=sys.stderr)
        return 2
    spec: dict[str, object] = {
        "algorithm": args.algorithm,
        "params": params,
        "dataset": args.dataset,
        "target": args.target,
        "horizon": args.horizon,
        "interval_level": args.interval_level,
        "seed": args.seed,
        "evaluation": {"method": args.evaluation, "test_fraction": args.test_fraction, "folds": args.folds},
        "start_ts": _epoch_ms(args.start),
        "end_ts": _epoch_ms(args.end),
    }
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if not args.quiet and (now - last[0] >= 0.5 or fraction >= 1.0):
            last[0] = now
            print(f"  {fraction * 100:5.1f}%  {message}", file=sys.stderr)

    try:
        result = train(spec, report, lambda: False)
    except FitFailed as exc:
        print(f"error: the model could not be fitted: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Cancelled):
        print("interrupted", file=sys.stderr)
        return 130
    artifact = result.pop("artifact")
    result["artifact"] = {k: v for k, v in artifact.items() if k != "bytes"}
    if args.json:
        print(json.dumps(json_safe(result), indent=2, sort_keys=True))
    else:
        print(metrics_report(result, source=args.dataset))
        print(f"artefact    {artifact['format']}, {artifact['size']} bytes, sha256 {artifact['sha256']}")
    return 0


def _backtest_arguments(parser: argparse.ArgumentParser) -> None:
    from aaiti.backtests.cli import add_arguments

    add_arguments(parser)


def _backtest(args: argparse.Namespace) -> int:
    from aaiti.backtests.cli import run

    return run(args)


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
    admin.add_argument(
        "--password", help="omit to be prompted (or set AAITI_ADMIN_PASSWORD or AAITI_ADMIN_PASSWORD_FILE)"
    )
    imp = sub.add_parser("import-candles", help="store candles from a CSV (timestamp_ms,open,high,low,close,volume)")
    imp.add_argument("file")
    imp.add_argument("--symbol", required=True, help="ticker, e.g. BTC")
    imp.add_argument("--timeframe", required=True, help="5m, 15m, 30m, 1h, 4h or 1d")
    imp.add_argument("--source", default="csv", help="'csv' or 'csv:<label>' (default csv)")
    tr = sub.add_parser("train", help="train and score one model on a bundled dataset, in this process")
    tr.add_argument("--dataset", required=True, help="bundled dataset, e.g. BTC-USD_1d")
    tr.add_argument("--algorithm", required=True, help="algorithm id or seed alias (see GET /api/models/algorithms)")
    tr.add_argument("--params", help="algorithm parameters as a JSON object")
    tr.add_argument("--target", choices=["price", "log_return"], default="price")
    tr.add_argument("--horizon", type=int, default=1, help="bars ahead")
    tr.add_argument("--interval-level", type=float, default=0.9)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--evaluation", choices=["holdout", "walk_forward"], default="holdout")
    tr.add_argument("--test-fraction", type=float, default=0.2)
    tr.add_argument("--folds", type=int, default=3)
    tr.add_argument("--start", help="first candle open time: YYYY-MM-DD[THH:MM] UTC or epoch ms")
    tr.add_argument("--end", help="last candle open time (inclusive)")
    tr.add_argument("--json", action="store_true", help="print the full result as JSON")
    tr.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    av = sub.add_parser("audit-verify", help="check the audit log's hash chain (exit 0 intact, 1 broken)")
    av.add_argument("--batch-size", type=int, default=1000, help="rows read per query")
    av.add_argument("--expect", metavar="SEQ:HASH", help="a head exported earlier that the chain must still hold")
    bt = sub.add_parser("backtest", help="run a backtest on bundled data in this process and print the report")
    _backtest_arguments(bt)
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
        if args.command == "train":
            return _train(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "import-candles":
            return _import_candles(args)
        if args.command == "audit-verify":
            return _audit_verify(args)
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
