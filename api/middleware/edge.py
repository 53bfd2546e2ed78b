"""Limits on slow or greedy HTTP clients that uvicorn's parser does not set.

* ``HeaderLimit``: a request whose headers (names, values, path and query) add up to
  more than ``max_bytes`` gets 431 and the connection closed. uvicorn's h11 parser
  refuses such a request head itself (``h11_max_incomplete_event_size``); the httptools
  parser, the one uvicorn picks when it is installed, has no limit at all.
* ``BodyDeadline``: the whole request body must arrive within ``timeout`` seconds of the
  request's start, else 408 and the connection closed: a client trickling its body a
  byte at a time would otherwise hold the request (and its slot) for as long as it likes.

Neither covers a request head that trickles in slowly: uvicorn hands the app nothing
before the head is complete. That is the reverse proxy's job (docs/operations.md).
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _error(status: int, message: str, code: str) -> tuple[Message, Message]:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def head_size(scope: Scope) -> int:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
    return size + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


class HeaderLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or head_size(scope) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1009})  # refuses the handshake
            return
        for message in _error(431, "Request headers too large", "HEADERS_TOO_LARGE"):
            await send(message)


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


class BodyDeadline:
    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body_done = started = False

        async def receive_in_time() -> Message:
            nonlocal body_done
            if body_done:  # e.g. waiting for a disconnect while streaming a response
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_in_time, send_tracked)
        except BodyTimeout:
            if started:
                raise
            message = f"The request body did not arrive within {self.timeout:g} s"
            for reply in _error(408, message, "REQUEST_TIMEOUT"):
                await send(reply)
