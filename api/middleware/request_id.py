"""Request ids: every HTTP request and WebSocket connection gets an id (``X-Request-ID``,
kept if the client sent a sane one; set by api/middleware/edge.py); log records carry it
(api/logs.py) and masked errors quote it."""

from __future__ import annotations

import contextvars
import re
import uuid

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return request_id.get() or uuid.uuid4().hex[:16]


def chosen_request_id(given: str) -> str:
    """The client's ``X-Request-ID`` if it is a sane one, else a new id."""
    return given if _SANE_ID.match(given) else uuid.uuid4().hex[:16]
