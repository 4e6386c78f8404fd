"""The Socket.IO server on the app's own port.

- The access token travels in the handshake ``auth`` payload (never in the URL); without a valid one the
  connection is refused.
- Every socket joins ``user:{id}``. ``subscribe``/``unsubscribe`` take ``{"room": "<kind>:<id>"}``; each room
  kind has an authorizer (``prices`` is open to any signed-in user, ``user`` only to its owner, ``job``/``bot``
  to the owner of the object). Unknown kinds are refused.
- A sweeper disconnects sockets whose token expired or whose user was deactivated / logged out.
- Emitting to a room queues a packet per client; the fan-out never awaits a client.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import socketio
import structlog

from aaiti.core.clock import Clock
from aaiti.core.observability import metrics
from aaiti.core.principal import Principal

log = structlog.get_logger(__name__)
ROOM_PATTERN = re.compile(r"^(?P<kind>[a-z_]{1,20}):(?P<ident>[A-Za-z0-9_.-]{1,64})$")
SWEEP_INTERVAL_S = 2.0


@dataclass(frozen=True, slots=True)
class SocketIdentity:
    principal: Principal
    token_version: int
    expires_at: datetime


Authenticate = Callable[[str], Awaitable[SocketIdentity]]
"""Verify an access token (signature, claims, user active, token version); raise on failure."""
StillValid = Callable[[list[tuple[uuid.UUID, int]]], Awaitable[set[uuid.UUID]]]
"""Given (user id, token version) pairs, return the user ids whose sessions are no longer valid."""
RoomAuthorizer = Callable[[Principal, str], Awaitable[bool]]


class SocketGateway:
    """Owns the python-socketio server; implements the Publisher protocol."""

    def __init__(self, *, cors_origins: list[str], clock: Clock, client_manager: Any = None) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors_origins or None,
            client_manager=client_manager,
            max_http_buffer_size=64 * 1024,
            ping_interval=20,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        self._clock = clock
        self._authenticate: Authenticate | None = None
        self._still_valid: StillValid | None = None
        self._authorizers: dict[str, RoomAuthorizer] = {"prices": self._any_user, "user": self._own_user}
        self._sessions: dict[str, SocketIdentity] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("subscribe", self._on_subscribe)
        self.sio.on("unsubscribe", self._on_unsubscribe)

    def configure_auth(self, authenticate: Authenticate, still_valid: StillValid) -> None:
        self._authenticate = authenticate
        self._still_valid = still_valid

    def register_room(self, kind: str, authorizer: RoomAuthorizer) -> None:
        self._authorizers[kind] = authorizer

    @property
    def connection_count(self) -> int:
        return len(self._sessions)

    async def publish(self, event: str, payload: dict[str, Any], room: str) -> None:
        await self.sio.emit(event, payload, room=room)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="socket-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for sid in list(self._sessions):
            await self.sio.disconnect(sid)

    async def drop_user(self, user_id: uuid.UUID) -> None:
        for sid, identity in list(self._sessions.items()):
            if identity.principal.id == user_id:
                await self.sio.disconnect(sid)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or self._authenticate is None:
            metrics.SOCKET_REFUSED.labels(reason="missing_token").inc()
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        try:
            identity = await self._authenticate(token)
        except Exception:
            metrics.SOCKET_REFUSED.labels(reason="invalid_token").inc()
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        self._sessions[sid] = identity
        await self.sio.enter_room(sid, f"user:{identity.principal.id}")
        metrics.SOCKET_CONNECTIONS.set(len(self._sessions))

    async def _on_disconnect(self, sid: str, *_: Any) -> None:
        self._sessions.pop(sid, None)
        metrics.SOCKET_CONNECTIONS.set(len(self._sessions))

    async def _on_subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        room, error = await self._check_room(sid, data)
        if error:
            return {"ok": False, "error": error}
        await self.sio.enter_room(sid, room)
        return {"ok": True, "room": room}

    async def _on_unsubscribe(self, sid: str, data: Any) -> dict[str, Any]:
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str) or not ROOM_PATTERN.match(room) or room.startswith("user:"):
            return {"ok": False, "error": "invalid room"}
        await self.sio.leave_room(sid, room)
        return {"ok": True, "room": room}

    async def _check_room(self, sid: str, data: Any) -> tuple[str, str | None]:
        identity = self._sessions.get(sid)
        if identity is None:
            return "", "not authenticated"
        room = data.get("room") if isinstance(data, dict) else None
        match = ROOM_PATTERN.match(room) if isinstance(room, str) else None
        if match is None:
            return "", "invalid room name"
        authorizer = self._authorizers.get(match["kind"])
        if authorizer is None:
            return "", "unknown room kind"
        try:
            allowed = await authorizer(identity.principal, match["ident"])
        except Exception:
            log.exception("room_authorizer_failed", room=room)
            allowed = False
        # A room you may not join and a room that does not exist answer alike (no existence leak).
        return (room, None) if allowed else ("", "not found")  # type: ignore[return-value]

    @staticmethod
    async def _any_user(_principal: Principal, _ident: str) -> bool:
        return True

    @staticmethod
    async def _own_user(principal: Principal, ident: str) -> bool:
        return ident == str(principal.id)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep()
            except Exception:
                log.exception("socket_sweep_failed")

    async def sweep(self) -> None:
        """Disconnect sockets whose token expired or whose session was revoked."""
        now = self._clock.now()
        expired = [sid for sid, ident in self._sessions.items() if ident.expires_at <= now]
        invalid_users: set[uuid.UUID] = set()
        if self._still_valid is not None and self._sessions:
            pairs = {(i.principal.id, i.token_version) for i in self._sessions.values()}
            invalid_users = await self._still_valid(sorted(pairs, key=lambda p: str(p[0])))
        for sid, ident in list(self._sessions.items()):
            if sid in expired or ident.principal.id in invalid_users:
                await self.sio.disconnect(sid)
