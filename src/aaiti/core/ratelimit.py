"""Rate limiting through the ``limits`` library (moving window; in memory, or Redis when configured)."""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from aaiti.core.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        storage = storage_from_string(f"async+{redis_url}") if redis_url else MemoryStorage()
        if not isinstance(storage, Storage):
            raise TypeError("the rate-limit storage must be an async storage")
        self._storage: Storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def hit(self, key: str, *, limit: int, window_s: int, what: str) -> None:
        """Count one attempt under ``key``; raise :class:`TooManyRequests` with Retry-After when over."""
        item = RateLimitItemPerSecond(limit, window_s)
        if await self._limiter.hit(item, key):
            return
        stats = await self._limiter.get_window_stats(item, key)
        raise TooManyRequests(f"too many {what}; try again later", retry_after=max(1.0, stats.reset_time - time.time()))

    async def reset(self) -> None:
        await self._storage.reset()
