"""Imports every ORM model so ``Base.metadata`` is complete (Alembic, tests)."""

from aaiti.admin.models import Setting
from aaiti.auth.models import RefreshToken, User
from aaiti.backtests.models import Backtest
from aaiti.bots.models import TradingBot
from aaiti.core.audit import AuditLog
from aaiti.core.db.base import Base
from aaiti.core.tasks.models import Job
from aaiti.ml.models import MLModel, Prediction

metadata = Base.metadata

__all__ = [
    "AuditLog",
    "Backtest",
    "Base",
    "Job",
    "MLModel",
    "Prediction",
    "RefreshToken",
    "Setting",
    "TradingBot",
    "User",
    "metadata",
]
