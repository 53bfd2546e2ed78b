"""Where a WebSocket client's token is in its connection_init payload, and how a refused
connection_init is reported.

Clients put it in different places: ``{"Authorization": "Bearer <JWT>"}`` (the
documented one), ``authorization``, ``headers.Authorization`` (Apollo users copying their
HTTP headers), ``token`` or ``authToken`` (a bare token, or "Bearer <JWT>"). An empty
payload is anonymous; a non-empty one with none of these is refused rather than taken as
anonymous, so that a misplaced token is reported instead of every subscription failing
later with "sign in".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER_KEYS = ("Authorization", "authorization")
TOKEN_KEYS = ("token", "authToken")
BAD_REQUEST = 4400
UNKNOWN_SHAPE = 'connection_init payload: put the token in Authorization ("Bearer <token>")'


class Refused(Exception):
    """A refused connection_init: the close code and reason, and for the legacy protocol
    the ``connection_error`` payload."""

    def __init__(self, code: int, reason: str, error_code: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.payload = {"message": reason, "extensions": {"code": error_code}}


def _text(where: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Refused(
        BAD_REQUEST, f"connection_init payload: {where} must be a string", "UNAUTHENTICATED"
    )


def authorization(params: Mapping[str, Any]) -> str | None:
    """The ``Authorization`` value ("Bearer <JWT>") the payload carries; None: anonymous."""
    for key in HEADER_KEYS:
        if key in params:
            return _text(key, params[key])
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        for key in HEADER_KEYS:
            if key in headers:
                return _text(f"headers.{key}", headers[key])
    for key in TOKEN_KEYS:
        if key in params:
            token = (_text(key, params[key]) or "").strip()
            if not token:
                return None
            scheme, _, rest = token.partition(" ")
            return token if scheme.lower() == "bearer" and rest.strip() else f"Bearer {token}"
    if params:
        raise Refused(BAD_REQUEST, UNKNOWN_SHAPE, "UNAUTHENTICATED")
    return None
