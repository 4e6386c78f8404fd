"""Domains publish events through :class:`Publisher`; they never import socketio."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Publisher(Protocol):
    async def publish(self, event: str, payload: dict[str, Any], room: str) -> None:
        """Send ``event`` to every socket in ``room``. Must not wait for slow clients."""
        ...


@dataclass
class RecordingPublisher:
    """Keeps published events in memory (tests, and a headless process with no sockets)."""

    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    async def publish(self, event: str, payload: dict[str, Any], room: str) -> None:
        self.events.append((event, payload, room))
