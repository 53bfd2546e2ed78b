"""Browser safety and abuse limits at the edge: security headers, a per-identity request
rate limit (token bucket, 429 with Retry-After)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Authenticator, InvalidToken, request_actor

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    # The GraphiQL page is the only HTML we serve: its scripts and styles are our own
    # files plus one inline bootstrap script; it talks to this origin only.
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
        b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        b"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'none'",
    ),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if scope["path"] == "/graphql" and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenBuckets:
    """One bucket per key: ``rate`` tokens a second, up to ``burst``. Bounded memory: the
    least recently used buckets are forgotten (a forgotten bucket is a full one)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is there."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """Per identity (the token's subject, else the client address) on /graphql."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, buckets: TokenBuckets):
        self.app = app
        self.authenticator = authenticator
        self.buckets = buckets

    def _key(self, scope: Scope) -> str:
        try:
            actor = request_actor(self.authenticator, scope)
        except InvalidToken:
            actor = None  # refused later anyway; count it against the address
        if actor is not None:
            return f"{actor.role}:{actor.id}"
        client = scope.get("client")
        return f"ip:{client[0] if client else '?'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._key(scope))
        if not wait:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": "Too many requests: slow down and retry after the given seconds",
                        "extensions": {"code": "RATE_LIMITED"},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"retry-after", str(max(1, math.ceil(wait))).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
