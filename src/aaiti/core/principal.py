"""The authenticated caller as plain data, so core routers and services need no auth-domain import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

ROLE_RANK = {"viewer": 0, "trader": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class Principal:
    id: uuid.UUID
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_mutate(self) -> bool:
        """Viewers read what they own but change nothing."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK["trader"]
