"""One process's link to Redis (``SHOPFRONT_REDIS_URL``), shared by the change bus
(``bus.py``), persisted queries and the per-identity rate limit (``shared.py``).

Redis is never on the critical path: every command runs under ``SHOPFRONT_REDIS_TIMEOUT``
and any failure (refused, reset, timed out) marks the link *degraded*; while degraded
nothing is sent to Redis at all and each user falls back to what one process can do
alone (the poll of the read model, a per-process store, per-process buckets). Only the
bus's listener probes Redis again, with a bounded, jittered backoff, and marks the link
connected once it is subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("shopfront.redis")
T = TypeVar("T")
State = Literal["connecting", "connected", "degraded"]
# What a failed Redis command can raise: the client's own errors, the socket's, and the
# timeout around it.
FAILURES = (RedisError, OSError, TimeoutError)
# First reconnect wait (seconds), doubled per failed try up to the configured cap.
BACKOFF_BASE = 0.1


class RedisUnavailable(Exception):
    """Redis is down or degraded: do without it."""


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def backoff(failures: int, cap: float) -> float:
    """Seconds before reconnect try number ``failures`` (1, 2, ...): exponential, capped,
    with jitter so that many processes do not reconnect in step."""
    ceiling = min(cap, BACKOFF_BASE * 2.0 ** max(failures - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)


class RedisLink:
    def __init__(self, url: str, timeout: float, reconnect_max: float) -> None:
        self.url = url
        self.timeout = timeout
        self.reconnect_max = reconnect_max
        # No retries inside the client: a failed command falls back at once, and the
        # listener alone decides when to try Redis again.
        self.client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
        )
        self.state: State = "connecting"
        self.problem: str | None = None
        # Times the link came back after being degraded.
        self.reconnects = 0
        # Commands that failed (each one fell back).
        self.failures = 0
        self._lost = asyncio.Event()

    @property
    def up(self) -> bool:
        return self.state == "connected"

    async def call(self, what: str, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run one command within the timeout; raises RedisUnavailable (and marks the link
        degraded) if Redis is not up or the command fails."""
        if not self.up:
            raise RedisUnavailable(self.problem or "not connected")
        try:
            async with asyncio.timeout(self.timeout):
                return await command(self.client)
        except FAILURES as error:
            self.failures += 1
            self.lost(f"{what}: {describe(error)}")
            raise RedisUnavailable(describe(error)) from error

    def connected(self) -> None:
        if self.state == "degraded":
            self.reconnects += 1
            log.warning("Redis at %s is back: the change bus is live again", redacted(self.url))
        self.state, self.problem = "connected", None
        self._lost.clear()

    def lost(self, problem: str) -> None:
        """Redis failed: degrade (once, with a warning) and wake the listener to reconnect."""
        if self.state == "degraded":
            return
        first = self.state == "connecting"
        self.state, self.problem = "degraded", problem
        self._lost.set()
        if first:
            log.warning(
                "Redis at %s is unreachable (%s): serving without it; changes from other "
                "processes arrive by poll (SHOPFRONT_PROJECTION_POLL_INTERVAL), persisted "
                "queries and rate limits are per process until it connects",
                redacted(self.url),
                problem,
            )
        else:
            log.warning(
                "Redis at %s failed (%s): the bus is degraded, delivering by poll; reconnecting",
                redacted(self.url),
                problem,
            )

    async def wait_lost(self) -> None:
        """Return once the link is marked degraded (by any user)."""
        await self._lost.wait()

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.aclose()
        except FAILURES:
            pass


async def cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the background tasks of a bus or a wake-up, and wait until each has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
