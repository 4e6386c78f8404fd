"""FastAPI dependency for the market runtime the lifespan started (``app.state.market``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aaiti.core.errors import Unavailable
from aaiti.market.runtime import MarketRuntime


async def get_market(request: Request) -> MarketRuntime:
    runtime: MarketRuntime | None = getattr(request.app.state, "market", None)
    if runtime is None:
        raise Unavailable("the market data service is not running")
    return runtime


Market = Annotated[MarketRuntime, Depends(get_market)]
