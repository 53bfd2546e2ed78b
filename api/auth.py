"""Identity from JWTs: ``sub`` (customer or staff id), ``role``, ``exp``.

HS256 with a shared secret by default; RS256 with keys from a JWKS (a file or a URL) for
tokens issued by an identity provider. The algorithm is pinned (``none`` and algorithm
swaps are refused); ``exp`` is required, ``nbf`` honoured, issuer and audience optional.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, cast

import jwt
from starlette.datastructures import Headers

from api.settings import Settings
from domain.commands import Actor, Role

ALGORITHM = "HS256"
ROLES: tuple[Role, ...] = ("customer", "staff")
# Verified tokens kept (a signature check costs more than the rest of a cached read).
VERIFIED_MAX = 10_000


class InvalidToken(Exception):
    """A token that names nobody; its message is for people (HTTP 401 bodies, WebSocket
    close reasons), never the JWT library's own words."""


# What each claim is, for "The token has no ..." (the claim's name in brackets).
CLAIM_NAMES = {
    "sub": "subject",
    "role": "role",
    "exp": "expiry time",
    "iss": "issuer",
    "aud": "audience",
}


def token_error(error: Exception) -> str:
    """The reason a token failed to verify, in words for people."""
    match error:
        case jwt.ExpiredSignatureError():
            return "The token has expired"
        case jwt.ImmatureSignatureError():
            return "The token is not valid yet"
        case jwt.InvalidSignatureError():
            return "The token's signature is invalid"
        case jwt.InvalidAlgorithmError():
            return "The token is signed with an algorithm this server does not accept"
        case jwt.MissingRequiredClaimError(claim=claim):
            return f"The token has no {CLAIM_NAMES.get(claim, claim)} ({claim} claim)"
        case jwt.InvalidIssuerError():
            return "The token comes from an issuer (iss claim) this server does not trust"
        case jwt.InvalidAudienceError():
            return "The token is meant for another audience (aud claim)"
        case jwt.InvalidIssuedAtError():
            return "The token's issue time (iat claim) is invalid"
        case jwt.exceptions.InvalidSubjectError():
            return "The token's subject (sub claim) is invalid"
        case jwt.DecodeError() | ValueError() | TypeError():
            return "The token is malformed"
        case _:
            return "The token is invalid"


def make_token(secret: str, sub: str, role: Role, ttl: dt.timedelta, **claims: Any) -> str:
    """An HS256 token (``shopfront token``, registerCustomer, tests)."""
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": sub, "role": role, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


class Authenticator:
    """Verifies bearer tokens as the settings say."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.secret = settings.jwt_secret
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        # RS256 keys by key id. From a URL they are fetched off the request path
        # (``refresh_keys``, at start-up and then periodically), never while a request waits.
        self.jwks_url: str | None = None
        self._keys: dict[str | None, Any] = {}
        # token -> (actor, nbf, exp) of tokens whose signature and claims checked out:
        # the same token again needs only its times checked (against the clock, as PyJWT
        # does: valid while nbf <= now < exp). Emptied whenever the keys change.
        self._verified: dict[str, tuple[Actor, float, float]] = {}
        if self.algorithm == "RS256":
            source = settings.jwt_jwks
            if not source:
                raise ValueError("SHOPFRONT_JWT_JWKS (a file or URL) is needed for RS256")
            if source.startswith(("http://", "https://")):
                self.jwks_url = source
            else:
                self._use(jwt.PyJWKSet.from_json(Path(source).read_text()))

    def _use(self, keys: jwt.PyJWKSet) -> None:
        self._keys = {key.key_id: key.key for key in keys.keys}
        self._verified = {}

    def refresh_keys(self) -> None:
        """Fetch the JWKS from its URL (blocking: call it from a worker thread)."""
        if self.jwks_url is not None:
            self._use(jwt.PyJWKClient(self.jwks_url, cache_keys=False).get_jwk_set())

    @property
    def can_sign(self) -> bool:
        """Whether this service issues tokens itself (HS256) or an identity provider does."""
        return self.algorithm == "HS256"

    def sign(self, sub: str, role: Role, ttl: dt.timedelta) -> str | None:
        return make_token(self.secret, sub, role, ttl) if self.can_sign else None

    def _key(self, token: str) -> Any:
        if self.algorithm == "HS256":
            return self.secret
        kid = jwt.get_unverified_header(token).get("kid")
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and self._keys:
            return next(iter(self._keys.values()))
        raise InvalidToken("The token's signing key is unknown")

    def decode(self, token: str) -> Actor:
        known = self._verified.get(token)
        if known is not None:
            actor, not_before, expires = known
            if not_before <= time.time() < expires:
                return actor
            del self._verified[token]  # out of its time: checked in full, for the error
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(token),
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={
                    "require": ["sub", "role", "exp"],
                    "verify_aud": self.audience is not None,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(token_error(error)) from None
        sub, role = claims["sub"], claims["role"]
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("The token's subject (sub claim) is invalid")
        if role not in ROLES:
            raise InvalidToken("The token has an unknown role (role claim)")
        actor = Actor(sub, cast(Role, role))
        if len(self._verified) >= VERIFIED_MAX:
            del self._verified[next(iter(self._verified))]  # the oldest first
        self._verified[token] = (actor, float(claims.get("nbf", 0)), float(claims["exp"]))
        return actor

    def actor(self, header: str | None) -> Actor | None:
        """``Authorization: Bearer <JWT>`` -> Actor; no header -> anonymous (None)."""
        if header is None or not header.strip():
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("Authorization must be 'Bearer <token>'")
        return self.decode(token.strip())


def decode_token(secret: str, token: str) -> Actor:
    """Verify an HS256 token with ``secret`` (tests, tools)."""
    return Authenticator(Settings(jwt_secret=secret)).decode(token)


_SCOPE_KEY = "shopfront.actor"


def request_actor(authenticator: Authenticator, scope: MutableMapping[str, Any]) -> Actor | None:
    """The caller of an HTTP request, verified once per request: the rate limiter and the
    GraphQL endpoint both ask, and the answer (or the refusal) is kept in the scope."""
    if _SCOPE_KEY not in scope:
        try:
            scope[_SCOPE_KEY] = authenticator.actor(Headers(scope=scope).get("authorization"))
        except InvalidToken as error:
            scope[_SCOPE_KEY] = error
    found = scope[_SCOPE_KEY]
    if isinstance(found, InvalidToken):
        raise found
    return found  # type: ignore[no-any-return]
