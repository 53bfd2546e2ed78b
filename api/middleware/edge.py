"""The serving edge: one ASGI middleware, in front of every route, that does for each
request what were eight layers of middleware (one set of frames, one ``send`` wrapper):

* the request id (api/middleware/request_id.py) in the log context and ``X-Request-ID``;
* the request's count and latency in /metrics (api/middleware/metrics.py);
* the security headers, and ``Cache-Control: no-store`` on API answers
  (api/middleware/security.py);
* ``HeaderLimit``: a request whose headers (names, values, path and query) add up to
  more than ``max_header_bytes`` gets 431 and the connection closed (a WebSocket
  handshake: close 1009). uvicorn's h11 parser refuses such a request head itself
  (``h11_max_incomplete_event_size``); the httptools parser, the one uvicorn picks when
  it is installed, has no limit at all.
* ``BodyDeadline``: the whole request body must arrive within ``body_read_timeout``
  seconds of the request's start, else 408 and the connection closed: a client trickling
  its body a byte at a time would otherwise hold the request (and its slot) for as long
  as it likes.
* CORS (api/middleware/origins.py): preflights answered, allowed origins told so;
* the rate limits of HTTP /graphql (api/middleware/security.py), 429 with Retry-After;
* a WebSocket's scope keeps the server's own ``send`` (api/ws/frames.py).

Each answer gets the same headers, in the same order, as it did from the eight layers
(tests/security/test_edge_headers.py): CORS's on whatever the endpoint or the rate limit
answered, then the security headers, then the request id.

Neither limit covers a request head that trickles in slowly: uvicorn hands the app
nothing before the head is complete. That is the reverse proxy's job
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware.metrics import RequestCounts
from api.middleware.origins import Cors
from api.middleware.request_id import chosen_request_id, request_id
from api.middleware.security import (
    CLIENT_ADDRESS,
    RateGate,
    client_address,
    refusal,
    with_security_headers,
)
from api.ws.frames import RAW_SEND_KEY


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


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


async def _nowhere(message: Message) -> None:
    """The ``send`` given to Starlette's CORS step, which only edits the message here."""


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        counts: RequestCounts,
        cors: Cors,
        rate_gate: RateGate,
        max_header_bytes: int,
        body_read_timeout: float,
    ) -> None:
        self.app = app
        self.counts = counts
        self.cors = cors
        self.rate_gate = rate_gate
        self.max_header_bytes = max_header_bytes
        self.body_read_timeout = body_read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[RAW_SEND_KEY] = send  # the express lane writes frames with it
        token = request_id.set(chosen_request_id(Headers(scope=scope).get("x-request-id", "")))
        try:
            if head_size(scope) > self.max_header_bytes:
                await send({"type": "websocket.close", "code": 1009})  # refuses the handshake
                return
            # Messages go straight through: one less hop for every message sent.
            await self.app(scope, receive, send)
        finally:
            request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        path: str = scope["path"]
        request_headers = Headers(scope=scope)
        rid = chosen_request_id(request_headers.get("x-request-id", ""))
        token = request_id.set(rid)
        status = 500
        started = cors = False  # cors: the answer is the endpoint's or the rate limit's

        async def send_out(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if cors:
                    await self.cors.send(message, _nowhere, request_headers)
                headers = list(message.get("headers", ()))
                with_security_headers(headers, path)
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_read_timeout
        body_done = False

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

        try:
            if head_size(scope) > self.max_header_bytes:
                for message in _error(431, "Request headers too large", "HEADERS_TOO_LARGE"):
                    await send_out(message)
                return
            try:
                if (
                    scope["method"] == "OPTIONS"
                    and "origin" in request_headers
                    and "access-control-request-method" in request_headers
                ):
                    preflight = self.cors.preflight_response(request_headers)
                    await preflight(scope, receive_in_time, send_out)
                    return
                cors = True
                if path != "/graphql":
                    await self.app(scope, receive_in_time, send_out)
                    return
                address = client_address(scope)
                wait = await self.rate_gate.wait(scope, address)
                if wait:
                    for message in refusal(wait):
                        await send_out(message)
                    return
                reset = CLIENT_ADDRESS.set(address)
                try:
                    await self.app(scope, receive_in_time, send_out)
                finally:
                    CLIENT_ADDRESS.reset(reset)
            except BodyTimeout:
                if started:
                    raise
                cors = False
                late = f"The request body did not arrive within {self.body_read_timeout:g} s"
                for reply in _error(408, late, "REQUEST_TIMEOUT"):
                    await send_out(reply)
        finally:
            request_id.reset(token)
            self.counts.observe(path, scope["method"], status, time.perf_counter() - began)
