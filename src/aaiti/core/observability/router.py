"""Health: ``/api/health`` (liveness: the process answers) and ``/api/health/ready`` (database, job runner and
any checks domains registered, e.g. the market data source). Not ready answers 503 with the reasons."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from aaiti.core.dependencies import Core
from aaiti.core.observability.health import CheckResult, ReadyCheck

router = APIRouter(prefix="/api/health", tags=["health"])
CHECK_TIMEOUT_S = 3.0


@router.get("")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Not ready; `checks` says why"}})
async def ready(core: Core) -> JSONResponse:
    checks: dict[str, ReadyCheck] = {"database": lambda: _db_check(core), "jobs": lambda: _runner_check(core)}
    checks.update(core.ready_checks)
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        try:
            result = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            result = CheckResult(False, f"no answer within {CHECK_TIMEOUT_S:.0f} s")
        except Exception as exc:
            result = CheckResult(False, f"{type(exc).__name__}: {exc}"[:300])
        results[name] = {"ok": result.ok, "detail": result.detail, **result.data}
    ok = all(r["ok"] for r in results.values())
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": results}, status_code=200 if ok else 503)


async def _db_check(core: Any) -> CheckResult:
    await core.db.ping()
    return CheckResult(True, f"{core.db.dialect} answers")


async def _runner_check(core: Any) -> CheckResult:
    ok, detail = core.runner.ready()
    return CheckResult(ok, detail)
