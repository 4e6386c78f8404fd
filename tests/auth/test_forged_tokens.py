"""RELIABILITY §7.1 token list: every forged, expired or confused token answers 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.conftest import TEST_SECRET, Account

from aaiti.auth.security import key_id


def _claims(account: Account, **changes: Any) -> dict[str, Any]:
    payload = jwt.decode(account.access, options={"verify_signature": False})
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


@pytest.fixture
def forged(alice: Account) -> dict[str, str]:
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(claims: dict[str, Any], key: Any = TEST_SECRET, alg: str = "HS256") -> str:
        # The real key's kid, so that each case is refused for the flaw it carries, not for a missing kid.
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": key_id(TEST_SECRET)})

    return {
        "alg_none": _unsigned(_claims(alice)),
        "alg_none_no_dot": _unsigned(_claims(alice))[:-1],
        "hs512": sign(_claims(alice), alg="HS512"),
        "rs256_random_key": sign(_claims(alice), key=rsa_key, alg="RS256"),
        "wrong_key": sign(_claims(alice), key="another-key-" + "x" * 40),
        "wrong_aud": sign(_claims(alice, aud="someone-else")),
        "wrong_iss": sign(_claims(alice, iss="evil")),
        "missing_aud": sign(_claims(alice, aud=None)),
        "missing_exp": sign({k: v for k, v in _claims(alice).items() if k != "exp"}),
        "missing_jti": sign({k: v for k, v in _claims(alice).items() if k != "jti"}),
        "missing_tv": sign({k: v for k, v in _claims(alice).items() if k != "tv"}),
        "expired_61s": sign(_claims(alice, iat=now - 1000, exp=now - 61)),
        "expired_1d": sign(_claims(alice, iat=now - 200_000, exp=now - 86_400)),
        "nbf_future": sign(_claims(alice, nbf=now + 3600)),
        "typ_refresh": sign(_claims(alice, typ="refresh")),
        "old_token_version": sign(_claims(alice, tv=0)),
        "unknown_user": sign(_claims(alice, sub="00000000-0000-0000-0000-000000000000")),
        "integer_sub": sign(_claims(alice, sub=12345)),
        "garbage": "not.a.jwt",
        "two_segments": "abc.def",
        "huge_header": _b64(b"{" + b" " * 100_000 + b"}") + ".e30.sig",
        "refresh_as_access": alice.refresh,
        "no_kid": jwt.encode(_claims(alice), TEST_SECRET, algorithm="HS256"),
        # the control: the same signer with nothing wrong is accepted (see the test below)
        "control": sign(_claims(alice)),
    }


async def test_forged_tokens_rejected(client: httpx.AsyncClient, alice: Account, forged: dict[str, str]) -> None:
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 200
    control = forged.pop("control")
    ok = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {control}"})
    assert ok.status_code == 200, "the forging helper itself must make acceptable tokens"
    for name, token in forged.items():
        r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text[:200]}"
        assert r.json()["error"] == "unauthorized", name


async def test_auth_header_variants_rejected(client: httpx.AsyncClient, alice: Account) -> None:
    cases = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {alice.access}"},
        {"Authorization": alice.access},
    ]
    for headers in cases:
        assert (await client.get("/api/auth/me", headers=headers)).status_code == 401, headers
    r = await client.get(f"/api/auth/me?token={alice.access}")
    assert r.status_code == 401, "tokens are never read from the URL"
    two = await client.get(
        "/api/auth/me",
        headers=[("Authorization", f"Bearer {alice.access}"), ("Authorization", f"Bearer {alice.access}")],
    )
    assert two.status_code == 401


def test_expiry_leeway_is_bounded() -> None:
    """TOK-02: a token 5 s past expiry passes with a 30 s leeway, 31 s past does not; leeway over 60 s is refused."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from aaiti.auth.security import TokenCodec
    from aaiti.core.config import AuthSettings
    from aaiti.core.errors import Unauthorized

    codec = TokenCodec(secret=TEST_SECRET, issuer="aaiti", audience="aaiti-api", access_ttl_s=900, leeway_s=30)
    minted = datetime.now(UTC)
    token, ttl = codec.encode_access(user_id=uuid.uuid4(), role="trader", token_version=1, now=minted)
    expiry = int(minted.timestamp()) + ttl
    assert codec.decode_access(token, now=expiry + 5).role == "trader"
    fresh = TokenCodec(secret=TEST_SECRET, issuer="aaiti", audience="aaiti-api", access_ttl_s=900, leeway_s=30)
    with pytest.raises(Unauthorized):
        fresh.decode_access(token, now=expiry + 31)
    with pytest.raises(Unauthorized):
        codec.decode_access(token, now=expiry + 31)  # a cached verification does not outlive the leeway either
    with pytest.raises(ValidationError):
        AuthSettings(leeway_s=61)
