"""Identity from JWTs: ``sub`` (customer or staff id), ``role``, ``exp``. HS256."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import jwt

from domain.commands import Actor, Role

ALGORITHM = "HS256"
ROLES: tuple[Role, ...] = ("customer", "staff")


class InvalidToken(Exception):
    pass


def make_token(secret: str, sub: str, role: Role, ttl: dt.timedelta) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Actor:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired") from None
    except jwt.PyJWTError as error:
        raise InvalidToken(f"Invalid token: {error}") from None
    sub, role = claims["sub"], claims["role"]
    if not isinstance(sub, str) or not sub or role not in ROLES:
        raise InvalidToken("Invalid token: bad 'sub' or 'role' claim")
    return Actor(sub, cast(Role, role))


def actor_from_header(secret: str, header: str | None) -> Actor | None:
    """``Authorization: Bearer <JWT>`` -> Actor; no header -> anonymous (None)."""
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization must be 'Bearer <token>'")
    return decode_token(secret, token.strip())
