"""Password hashing and token primitives.

Passwords: argon2id through pwdlib (bcrypt accepted as a legacy verifier and upgraded on login). Hashing runs in
a worker thread behind a semaphore so the event loop never blocks and a login burst cannot exhaust memory.
Passwords are used exactly as typed: no trimming, no normalisation, no truncation.

Access tokens: JWT HS256 with iss/aud/typ/exp/iat/jti/sub and ``tv`` (the user's token version, compared with
the database on every request). Refresh tokens: 256-bit opaque strings; only their SHA-256 is stored.

Key rotation (docs/secrets.md): tokens carry a ``kid`` header, a non-secret fingerprint of the signing key
(:func:`key_id`). Signing always uses the current key; verification picks the key by ``kid`` among the current and
the previous keys, so a token signed before a rotation stays valid until it expires. A missing or unknown ``kid``
is refused before any signature work (every token this service has ever issued carries one).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType

import anyio
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from aaiti.core.errors import Unauthorized

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
COMMON_PASSWORD_COUNT = 3000
VERIFIED_CACHE_SIZE = 10_000
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "jti", "typ", "tv"]
KID_LABEL = b"aaiti.jwt.kid.v1\x00"
KID_LENGTH = 16


def key_id(secret: str) -> str:
    """The ``kid`` of an HS256 key: 16 hex characters of SHA-256 over a fixed label and the key.

    Safe to publish: the keys are at least 32 random bytes, so the fingerprint reveals nothing usable about them."""
    return hashlib.sha256(KID_LABEL + secret.encode()).hexdigest()[:KID_LENGTH]


@cache
def common_passwords() -> frozenset[str]:
    """The 3,000 most common passwords (zxcvbn's frequency list, derived from leaked-password corpora)."""
    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"][:COMMON_PASSWORD_COUNT])


def password_problem(password: str, email: str | None = None) -> str | None:
    """A reason the password is refused by policy, or None. Length is checked by the request schema."""
    if password.lower() in common_passwords():
        return "this password is among the most common passwords; choose another"
    if email and password.lower() in {email.lower(), email.split("@", 1)[0].lower()}:
        return "the password must not be your email address"
    if not password.strip():
        return "the password must not be only whitespace"
    return None


class PasswordHasher:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int, concurrency: int) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism),
                BcryptHasher(),
            )
        )
        self._limit = anyio.Semaphore(concurrency)
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        async with self._limit:
            return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """(valid, upgraded hash or None). With no stored hash a dummy is verified so timing matches."""
        async with self._limit:
            if stored_hash is None:
                await anyio.to_thread.run_sync(self._hash.verify, password, self._dummy)
                return False, None
            try:
                return await anyio.to_thread.run_sync(self._hash.verify_and_update, password, stored_hash)
            except Exception:  # an unreadable stored hash is a failed login, not a crash
                return False, None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    token_version: int
    jti: str
    expires_at: datetime


class TokenCodec:
    """Mints and verifies access tokens with a fixed key set.

    Keys change only at a restart, i.e. with a new codec; the verified-token cache lives in the instance, so a
    token accepted under a key that has since been removed is never served from it."""

    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        audience: str,
        access_ttl_s: int,
        leeway_s: int,
        previous_secrets: Sequence[str] = (),
    ) -> None:
        self._secret = secret
        self.kid = key_id(secret)
        keys = {key_id(old): old for old in previous_secrets}
        keys[self.kid] = secret
        self._keys: Mapping[str, str] = MappingProxyType(keys)
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = timedelta(seconds=access_ttl_s)
        self._leeway = leeway_s
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The kids this codec verifies, current first (for the start-up log; not secret)."""
        return (self.kid, *(k for k in self._keys if k != self.kid))

    def encode_access(self, *, user_id: uuid.UUID, role: str, token_version: int, now: datetime) -> tuple[str, int]:
        exp = now + self.access_ttl
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": int(now.timestamp()),
            "exp": int(exp.timestamp()),
            "jti": secrets.token_hex(16),
            "typ": ACCESS_TYPE,
            "role": role,
            "tv": token_version,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, int(self.access_ttl.total_seconds())

    def decode_access(self, token: str, *, now: float | None = None) -> AccessClaims:
        """Verify signature, algorithm, iss, aud, exp/iat/nbf and the token type. Raises Unauthorized.

        Verified tokens are remembered (bounded LRU keyed by the exact token string) so a client reusing its
        token skips the HMAC and JSON work; expiry is still checked on every call, and the token version is
        checked against the database by the caller as before."""
        moment = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at.timestamp() + self._leeway <= moment:
                self._verified.pop(token, None)
                raise Unauthorized("invalid or expired token")
            self._verified.move_to_end(token)
            return cached
        claims = self._decode(token, moment)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _key_for(self, token: str) -> str:
        """The key named by the ``kid`` header; jku/x5u/jwk and every other header are ignored."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) and len(kid) == KID_LENGTH else None
        if key is None:
            raise Unauthorized("invalid or expired token")
        return key

    def _decode(self, token: str, moment: float) -> AccessClaims:
        """PyJWT checks exp/nbf/iat against the wall clock; ``moment`` (the caller's clock) is applied to exp as
        well, the same rule as for cached tokens, so an injected clock cannot see an expired token as valid."""
        try:
            key = self._key_for(token)
            # algorithms=[HS256] makes PyJWT refuse every other alg (none, HS512, RS256, ...).
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
            if claims.get("typ") != ACCESS_TYPE:
                raise Unauthorized("invalid token")
            if float(claims["exp"]) + self._leeway <= moment:
                raise Unauthorized("invalid or expired token")
            tv = claims["tv"]
            if not isinstance(tv, int) or isinstance(tv, bool) or not isinstance(claims.get("role"), str):
                raise Unauthorized("invalid token")
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                role=claims["role"],
                token_version=tv,
                jti=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
            )
        except Unauthorized:
            raise
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise Unauthorized("invalid or expired token") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
