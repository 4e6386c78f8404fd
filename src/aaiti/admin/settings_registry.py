"""The keys of the ``settings`` table: each has a validator, a description and a secrecy flag.

Secret values are write-only: they are never returned by the API, not even to administrators.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError, constr

from aaiti.core.errors import Invalid


@dataclass(frozen=True, slots=True)
class SettingSpec:
    key: str
    description: str
    parse: Callable[[Any], Any]
    secret: bool = False
    default: Any = None


def _adapter(tp: Any) -> Callable[[Any], Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(tp)

    def parse(value: Any) -> Any:
        return adapter.validate_python(value, strict=True)

    return parse


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec(
            "registration.open",
            "Whether anyone may register a trader account (takes effect at once; overrides "
            "AAITI_AUTH__REGISTRATION_OPEN)",
            _adapter(bool),
            default=None,
        ),
        SettingSpec(
            "ui.announcement",
            "A message for every user, returned by GET /api/settings",
            _adapter(constr(max_length=500)),
            default="",
        ),
        SettingSpec(
            "coingecko.api_key",
            "CoinGecko API key (write-only). Used at the next start when AAITI_MARKET__COINGECKO_API_KEY is unset, "
            "as a demo key unless AAITI_MARKET__COINGECKO_KEY_KIND=pro",
            _adapter(constr(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")),
            secret=True,
        ),
    )
}


def validate_setting(key: str, value: Any) -> str:
    """Validate ``value`` for ``key`` and return its stored JSON text. Raises Invalid."""
    spec = SPECS.get(key)
    if spec is None:
        raise Invalid(f"unknown setting {key!r}; known: {', '.join(sorted(SPECS))}")
    try:
        parsed = spec.parse(value)
    except ValidationError as exc:
        raise Invalid(f"invalid value for {key}: {exc.errors()[0]['msg']}") from None
    return json.dumps(parsed)
