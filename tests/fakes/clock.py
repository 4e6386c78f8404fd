"""Deterministic time for tests: a sleep that advances a :class:`FrozenClock` instead of waiting."""

from __future__ import annotations

import asyncio

from aaiti.core.clock import FrozenClock


class ClockSleeper:
    """Injected as ``sleep``: records each requested wait and moves ``clock`` forward by it (no real waiting)."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    @property
    def total(self) -> float:
        return sum(self.calls)
