"""Imports every ORM model so ``Base.metadata`` is complete (Alembic, tests)."""

from aaiti.admin.models import Setting
from aaiti.auth.models import RefreshToken, User
from aaiti.backtests.models import Backtest, BacktestTrade
from aaiti.bots.models import TradingBot
from aaiti.core.audit import AuditLog
from aaiti.core.db.base import Base
from aaiti.core.tasks.models import Job
from aaiti.market.models import Candle
from aaiti.ml.models import MLModel, ModelVersion, Prediction

metadata = Base.metadata

__all__ = [
    "AuditLog",
    "Backtest",
    "BacktestTrade",
    "Base",
    "Candle",
    "Job",
    "MLModel",
    "ModelVersion",
    "Prediction",
    "RefreshToken",
    "Setting",
    "TradingBot",
    "User",
    "metadata",
]
