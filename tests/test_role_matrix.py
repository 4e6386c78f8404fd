"""Role x route matrix generated from ``app.routes``: a new route without an entry here fails the suite.

Policies: public (no token), user (any signed-in role, viewers included), mutate (trader or admin; viewers
get 403), admin (administrators only). Anonymous calls to non-public routes get 401.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from tests.conftest import Account

PUBLIC, USER, MUTATE, ADMIN = "public", "user", "mutate", "admin"

MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/health/ready"): PUBLIC,
    ("POST", "/api/auth/register"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/token"): PUBLIC,
    ("POST", "/api/auth/refresh"): PUBLIC,
    ("POST", "/api/auth/logout"): USER,
    ("GET", "/api/auth/me"): USER,
    ("POST", "/api/auth/change-password"): USER,
    ("GET", "/api/users"): ADMIN,
    ("PATCH", "/api/users/{user_id}"): ADMIN,
    ("GET", "/api/settings"): USER,
    ("PUT", "/api/settings/{key}"): ADMIN,
    ("GET", "/api/audit-logs"): USER,
    ("GET", "/api/audit-logs/verify"): ADMIN,
    ("GET", "/api/jobs"): USER,
    ("POST", "/api/jobs"): MUTATE,
    ("GET", "/api/jobs/{job_id}"): USER,
    ("POST", "/api/jobs/{job_id}/cancel"): MUTATE,
    ("GET", "/api/market/prices"): USER,
    ("GET", "/api/market/candles"): USER,
    ("GET", "/api/market/symbols"): USER,
    ("GET", "/api/market/search"): USER,
    ("GET", "/api/market/status"): USER,
    ("POST", "/api/market/import"): MUTATE,
    ("POST", "/api/market/backfill"): MUTATE,
    ("POST", "/api/indicators"): USER,
    ("GET", "/api/models/algorithms"): USER,
    ("GET", "/api/models"): USER,
    ("POST", "/api/models"): MUTATE,
    ("POST", "/api/models/compare"): USER,
    ("GET", "/api/models/{model_id}"): USER,
    ("PATCH", "/api/models/{model_id}"): MUTATE,
    ("DELETE", "/api/models/{model_id}"): MUTATE,
    ("POST", "/api/models/{model_id}/train"): MUTATE,
    ("GET", "/api/models/{model_id}/versions"): USER,
    ("POST", "/api/models/{model_id}/predict"): MUTATE,
    ("GET", "/api/models/{model_id}/predictions"): USER,
    ("GET", "/api/backtests/strategies"): USER,
    ("POST", "/api/backtests"): MUTATE,
    ("GET", "/api/backtests"): USER,
    ("GET", "/api/backtests/compare"): USER,
    ("GET", "/api/backtests/{backtest_id}"): USER,
    ("GET", "/api/backtests/{backtest_id}/trades"): USER,
    ("GET", "/api/backtests/{backtest_id}/runs"): USER,
    ("DELETE", "/api/backtests/{backtest_id}"): MUTATE,
    ("GET", "/metrics"): PUBLIC,
}
NOT_API = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/", "/api/{rest:path}"}
SAFE_TO_SKIP_CALLING = {("POST", "/api/auth/logout"), ("POST", "/api/auth/change-password")}


def _flatten(routes: list[Any]) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, expanding routers included with FastAPI's lazy include mechanism."""
    out: list[tuple[str, set[str]]] = []
    for route in routes:
        if isinstance(route, Mount):
            continue
        if hasattr(route, "effective_candidates"):
            for candidate in route.effective_candidates():
                if hasattr(candidate, "effective_candidates"):
                    out.extend(_flatten([candidate]))
                else:
                    out.append((candidate.path, set(getattr(candidate.original_route, "methods", None) or ())))
        elif isinstance(route, APIRoute | Route):
            out.append((route.path, set(route.methods or ())))
    return out


def _routes(app: Any) -> set[tuple[str, str]]:
    flat = _flatten(app.fastapi.router.routes)
    assert len(flat) > 10, "route discovery failed"
    return {(m, path) for path, methods in flat if path not in NOT_API for m in methods if m != "HEAD"}


def _fill(path: str) -> str:
    return (
        path.replace("{user_id}", str(uuid.uuid4()))
        .replace("{job_id}", str(uuid.uuid4()))
        .replace("{backtest_id}", str(uuid.uuid4()))
        .replace("{model_id}", str(uuid.uuid4()))
        .replace("{key}", "ui.announcement")
    )


async def test_every_route_is_in_the_matrix(app: Any) -> None:
    missing = _routes(app) - set(MATRIX)
    assert not missing, f"routes without a role-matrix entry: {sorted(missing)}"
    stale = set(MATRIX) - _routes(app)
    assert not stale, f"matrix entries for routes that no longer exist: {sorted(stale)}"


def _assert_api_headers(r: httpx.Response, what: str) -> None:
    """CFG-01 on every answer of every route, whatever its status."""
    assert r.headers.get("x-content-type-options") == "nosniff", what
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), what
    assert r.headers.get("referrer-policy") == "no-referrer", what
    assert r.headers.get("cache-control") == "no-store", what
    assert r.headers.get("x-request-id"), what


async def test_role_matrix(client: httpx.AsyncClient, alice: Account, viewer: Account, admin: Account) -> None:
    for (method, path), policy in sorted(MATRIX.items()):
        if (method, path) in SAFE_TO_SKIP_CALLING:
            continue
        url = _fill(path)
        if policy == PUBLIC:
            _assert_api_headers(await client.request(method, url, json={}), f"public {method} {path}")
            continue
        anon = await client.request(method, url, json={})
        assert anon.status_code == 401, f"anonymous {method} {path}: {anon.status_code}"
        _assert_api_headers(anon, f"anonymous {method} {path}")
        results = {}
        for who in (viewer, alice, admin):
            r = await client.request(method, url, json={}, headers=who.headers)
            results[who.role] = r.status_code
            _assert_api_headers(r, f"{who.role} {method} {path}")
        if policy == USER:
            assert all(code not in (401, 403) for code in results.values()), (method, path, results)
        elif policy == MUTATE:
            assert results["viewer"] == 403, (method, path, results)
            assert results["trader"] not in (401, 403) and results["admin"] not in (401, 403), (method, path, results)
        elif policy == ADMIN:
            assert results["viewer"] == 403 and results["trader"] == 403, (method, path, results)
            assert results["admin"] not in (401, 403), (method, path, results)
    # The routes called in the loop above are skipped only for self-destructive ones; check them for anon too.
    for method, path in SAFE_TO_SKIP_CALLING:
        assert (await client.request(method, path, json={})).status_code == 401
