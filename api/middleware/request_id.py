"""Request ids: every HTTP request and WebSocket connection gets an id (``X-Request-ID``,
kept if the client sent a sane one); log records carry it (api/logs.py) and masked errors
quote it."""

from __future__ import annotations

import contextvars
import re
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return request_id.get() or uuid.uuid4().hex[:16]


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            # WebSocket messages go straight through: one less hop for every message sent.
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            request_id.reset(token)
