"""Browser safety and abuse limits at the edge: security headers, request rate limits per
identity and per client address (token buckets, 429 with Retry-After), sign-ups per
address."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from contextvars import ContextVar

import orjson
from graphql import GraphQLFormattedError
from starlette.types import Message, Scope

from api.auth import Authenticator, InvalidToken, request_actor
from api.cluster.link import RedisUnavailable
from api.cluster.shared import RedisBuckets
from api.settings import Settings

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


def with_security_headers(headers: list[tuple[bytes, bytes]], path: str) -> None:
    """Adds to a response's headers the security headers it does not set itself, and
    ``Cache-Control: no-store`` to an API answer that says nothing of caching."""
    present = {name.lower() for name, _ in headers}
    headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
    if path == "/graphql" and b"cache-control" not in present:
        headers.append((b"cache-control", b"no-store"))


class TokenBuckets:
    """One bucket per key: ``rate`` tokens a second, up to ``burst``. Bounded memory: the
    least recently used buckets are forgotten (a forgotten bucket is a full one)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def wait(self, key: str, now: float, count: int = 1) -> float:
        """Seconds until ``count`` tokens are there (0: they are there now); takes nothing.
        More than the burst can never be there: the wait is then for a full bucket."""
        need = min(count, self.burst)
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= need and count <= self.burst else (need - tokens) / self.rate

    def take(self, key: str, now: float | None = None, count: int = 1) -> float:
        """Take ``count`` tokens; return 0 if allowed, else the seconds until they are there."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(key, now)
        wait = 0.0
        if tokens >= count:
            tokens -= count
        else:
            wait = (min(count, self.burst) - tokens) / self.rate
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def _buckets(rate: float, burst: int) -> TokenBuckets | None:
    return TokenBuckets(rate, burst) if rate else None


class RateLimits:
    """The buckets every transport draws from, one set per process (on ``Services``): an
    HTTP request and each operation sent over a WebSocket take a token from the caller's
    identity bucket and one from its address's; a sign-up also takes one from its
    address's registration bucket (each sign-up mints an identity with a full bucket).

    With ``shared`` (Redis configured), the identity buckets are Redis's, one for all
    processes; while Redis is unavailable each process counts in its own again."""

    def __init__(self, settings: Settings, shared: RedisBuckets | None = None) -> None:
        self.identities = _buckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.addresses = _buckets(
            settings.rate_limit_per_address_per_second, settings.rate_limit_per_address_burst
        )
        self.registrations = _buckets(
            settings.registrations_per_address_per_minute / 60,
            settings.registrations_per_address_burst,
        )
        self.shared = shared if self.identities is not None else None

    async def request(self, identity: str, address: str, count: int = 1) -> float:
        """0 if allowed (``count`` tokens taken from both buckets: a batch of operations
        counts each), else the seconds to wait (and nothing taken: a refused request does
        not drain the other bucket)."""
        now = time.monotonic()
        shared = self.shared
        if shared is not None and shared.link.up:
            wait = self.addresses.wait(address, now, count) if self.addresses else 0.0
            if wait:
                return wait
            try:
                wait = await shared.take(identity, count)
            except RedisUnavailable:
                return self._request_here(identity, address, count, time.monotonic())
            if not wait and self.addresses is not None:
                self.addresses.take(address, now, count)
            return wait
        return self._request_here(identity, address, count, now)

    def _request_here(self, identity: str, address: str, count: int, now: float) -> float:
        """``request`` with this process's buckets only."""
        pairs = [(b, k) for b, k in ((self.identities, identity), (self.addresses, address)) if b]
        wait = max((buckets.wait(key, now, count) for buckets, key in pairs), default=0.0)
        if wait:
            return wait
        for buckets, key in pairs:
            buckets.take(key, now, count)
        return 0.0

    def registration(self, address: str) -> float:
        """0 if this address may register one more customer now, else the seconds to wait."""
        return 0.0 if self.registrations is None else self.registrations.take(address)


def retry_after(wait: float) -> int:
    """Whole seconds to tell a refused client to wait (at least 1)."""
    return max(1, math.ceil(wait))


def rate_limited_error(wait: float) -> GraphQLFormattedError:
    """The GraphQL error of a refused request or WebSocket operation."""
    return {
        "message": "Too many requests: slow down and retry after the given seconds",
        "extensions": {"code": "RATE_LIMITED", "retryAfter": retry_after(wait)},
    }


# The client address of the HTTP request being served, for what runs inside it (the
# sign-up limit in registerCustomer); a WebSocket's context carries its own.
CLIENT_ADDRESS: ContextVar[str] = ContextVar("shopfront.client_address", default="local")


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


class RateGate:
    """Rate limits on HTTP /graphql: per identity (the token's subject, else the client
    address) and per client address, checked by the edge middleware before the request
    reaches the endpoint. WebSocket operations are counted by the WebSocket view, against
    the same buckets."""

    def __init__(self, authenticator: Authenticator, limits: RateLimits):
        self.authenticator = authenticator
        self.limits = limits

    def _key(self, scope: Scope, address: str) -> str:
        try:
            actor = request_actor(self.authenticator, scope)
        except InvalidToken:
            actor = None  # refused later anyway; count it against the address
        if actor is not None:
            return f"{actor.role}:{actor.id}"
        return f"ip:{address}"

    async def wait(self, scope: Scope, address: str) -> float:
        """0 if this request may go on (its tokens taken), else the seconds to wait."""
        return await self.limits.request(self._key(scope, address), address)


def refusal(wait: float) -> tuple[Message, Message]:
    """The 429 answer to a request refused by the rate limits."""
    body = orjson.dumps({"errors": [rate_limited_error(wait)]})
    start: Message = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"retry-after", str(retry_after(wait)).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}
