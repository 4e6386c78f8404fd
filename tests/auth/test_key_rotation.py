"""RELIABILITY CFG-03: JWT signing-key rotation. Tokens carry a ``kid``; after a restart with a new current key
and the old one as previous, old tokens still verify and new ones carry the new kid; dropping the old key makes
its tokens 401. A forged, unknown or malformed ``kid`` is a 401, never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from jwt.utils import base64url_encode
from tests.conftest import TEST_SECRET, Account, make_settings

from aaiti.app import create_app
from aaiti.auth.security import TokenCodec, key_id
from aaiti.core.errors import Unauthorized

KEY_B = secrets.token_urlsafe(48)
ATTACKER_KEY = secrets.token_urlsafe(48)


@asynccontextmanager
async def restarted(tmp_path: Path, db_path: Path, *, current: str, previous: list[str]) -> AsyncIterator[Any]:
    """A fresh app (new codec, empty token cache) on the same database: what a restart with new keys gives."""
    settings = make_settings(tmp_path, db_path, auth={"jwt_secret": current, "jwt_previous_secrets": previous})
    asgi = create_app(settings)
    async with LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def me(client: httpx.AsyncClient, token: str) -> int:
    r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 401:
        assert r.json()["error"] == "unauthorized"
    return r.status_code


def kid_of(token: str) -> str:
    kid = jwt.get_unverified_header(token)["kid"]
    assert isinstance(kid, str)
    return kid


def raw_sign(token: str, key: str, header: dict[str, Any]) -> str:
    """HS256 by hand, for headers PyJWT refuses to write (a kid that is not a string)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    signing_input = b".".join(
        base64url_encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64url_encode(signature)).decode()


def resign(token: str, key: str, **headers: Any) -> str:
    """The same claims under chosen headers and key (a header value of None drops that header)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    header = {"kid": kid_of(token), **headers}
    return jwt.encode(claims, key, algorithm="HS256", headers={k: v for k, v in header.items() if v is not None})


def test_key_id_is_short_stable_and_not_the_key() -> None:
    kid = key_id(TEST_SECRET)
    assert kid == key_id(TEST_SECRET) and len(kid) == 16
    assert kid != key_id(KEY_B)
    assert kid not in TEST_SECRET and TEST_SECRET[:16] != kid
    assert int(kid, 16) >= 0


async def test_rotation_keeps_old_tokens_until_the_old_key_is_dropped(
    client: httpx.AsyncClient, alice: Account, tmp_path: Path, db_path: Path
) -> None:
    assert kid_of(alice.access) == key_id(TEST_SECRET)
    async with restarted(tmp_path, db_path, current=KEY_B, previous=[TEST_SECRET]) as rotated:
        assert await me(rotated, alice.access) == 200, "a token signed with the previous key still verifies"
        assert await me(rotated, alice.access) == 200, "and again from the verified-token cache"
        r = await rotated.post("/api/auth/login", json={"email": alice.email, "password": alice.password})
        assert r.status_code == 200, r.text
        fresh = r.json()["access_token"]
        assert kid_of(fresh) == key_id(KEY_B), "new tokens are signed with the current key"
        jwt.decode(fresh, KEY_B, algorithms=["HS256"], audience="aaiti-api")
    async with restarted(tmp_path, db_path, current=KEY_B, previous=[]) as finished:
        assert await me(finished, alice.access) == 401, "the removed key's tokens are refused"
        assert await me(finished, fresh) == 200
        # Refresh tokens are opaque database rows: they survive the rotation and yield a current-key token.
        r = await finished.post("/api/auth/refresh", json={"refresh_token": alice.refresh})
        assert r.status_code == 200, r.text
        assert kid_of(r.json()["access_token"]) == key_id(KEY_B)


async def test_forged_kids_are_401(client: httpx.AsyncClient, alice: Account, tmp_path: Path, db_path: Path) -> None:
    async with restarted(tmp_path, db_path, current=KEY_B, previous=[TEST_SECRET]) as rotated:
        cases = {
            "unknown_kid": resign(alice.access, TEST_SECRET, kid=secrets.token_hex(8)),
            "previous_kid_other_key": resign(alice.access, ATTACKER_KEY, kid=key_id(TEST_SECRET)),
            "current_kid_previous_key": resign(alice.access, TEST_SECRET, kid=key_id(KEY_B)),
            "kid_of_attacker_key": resign(alice.access, ATTACKER_KEY, kid=key_id(ATTACKER_KEY)),
            "path_traversal": resign(alice.access, TEST_SECRET, kid="../../../../etc/passwd"),
            "path_traversal_kid_length": resign(alice.access, TEST_SECRET, kid="../../etc/passwd"),
            "huge_kid": resign(alice.access, TEST_SECRET, kid="a" * 200_000),
            "kid_with_nul": resign(alice.access, TEST_SECRET, kid="\x00" * 16),
            "integer_kid": raw_sign(alice.access, TEST_SECRET, {"alg": "HS256", "kid": 12345}),
            "list_kid": raw_sign(alice.access, TEST_SECRET, {"alg": "HS256", "kid": [key_id(TEST_SECRET)]}),
            "null_kid_current_key": raw_sign(alice.access, KEY_B, {"alg": "HS256", "kid": None}),
            "kidless_previous_key": resign(alice.access, TEST_SECRET, kid=None),
            "jwk_embedded_attacker_key": resign(
                alice.access,
                ATTACKER_KEY,
                kid=key_id(KEY_B),
                jwk={"kty": "oct", "k": base64url_encode(ATTACKER_KEY.encode()).decode()},
                jku="https://evil.example/jwks.json",
                x5u="https://evil.example/cert.pem",
            ),
        }
        for name, token in cases.items():
            assert await me(rotated, token) == 401, name
        assert await me(rotated, alice.access) == 200


def _codec(secret: str, previous: tuple[str, ...] = ()) -> TokenCodec:
    return TokenCodec(
        secret=secret,
        previous_secrets=previous,
        issuer="aaiti",
        audience="aaiti-api",
        access_ttl_s=900,
        leeway_s=10,
    )


def _kidless(key: str, *, iat: int, exp: int) -> str:
    claims = {
        "iss": "aaiti",
        "aud": "aaiti-api",
        "sub": str(uuid.uuid4()),
        "iat": iat,
        "exp": exp,
        "jti": secrets.token_hex(16),
        "typ": "access",
        "role": "trader",
        "tv": 1,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def test_cache_does_not_outlive_a_removed_key() -> None:
    old = _codec(TEST_SECRET)
    token, _ = old.encode_access(user_id=uuid.uuid4(), role="trader", token_version=1, now=datetime.now(UTC))
    rotated = _codec(KEY_B, (TEST_SECRET,))
    assert rotated.decode_access(token).role == "trader"
    assert rotated.decode_access(token).role == "trader"
    with pytest.raises(Unauthorized):
        _codec(KEY_B).decode_access(token)


def test_kidless_tokens_are_refused() -> None:
    """Every token this service issues names its key; one without ``kid`` is refused even with the right key."""
    now = int(time.time())
    codec = _codec(KEY_B, (TEST_SECRET,))
    for key in (KEY_B, TEST_SECRET):
        with pytest.raises(Unauthorized):
            codec.decode_access(_kidless(key, iat=now - 60, exp=now + 840))
