"""The one place routers are mounted under /api.

Unknown /api paths need no catch-all route: the 404 handler answers JSON, and a catch-all would turn
"wrong method" (405) into 404. The SPA fallback never serves /api paths."""

from __future__ import annotations

from fastapi import APIRouter

from aaiti.admin.router import audit_router, settings_router, users_router
from aaiti.auth.dependencies import current_principal, require_trader
from aaiti.auth.router import router as auth_router
from aaiti.backtests.router import router as backtests_router
from aaiti.core.observability.router import router as health_router
from aaiti.core.tasks.router import build_jobs_router
from aaiti.market.indicators_router import router as indicators_router
from aaiti.market.router import router as market_router
from aaiti.ml.router import router as ml_router


def build_api_router() -> APIRouter:
    api = APIRouter(prefix="/api")
    api.include_router(health_router)
    api.include_router(auth_router)
    api.include_router(users_router)
    api.include_router(settings_router)
    api.include_router(audit_router)
    api.include_router(build_jobs_router(current_principal, require_trader))
    api.include_router(backtests_router)
    api.include_router(ml_router)
    api.include_router(market_router)
    api.include_router(indicators_router)

    return api
