"""The change bus: a wake-up signal between processes over Redis, not the source of truth.

What travels: after a command commits, its process publishes "the event log reaches
position H" (the leader wakes and applies it at once instead of at its next poll); as
soon as the leader's order changes commit (before its own subscribers are sent them), and
again after its whole projector step (or a rebuild, a retry), it publishes "the
projections reached position P". Every process listens and, on a message from another
process, runs its follower step at once (``ReadSide.signal``): it reads the checkpoints
(positions for read-your-writes waits and ``extensions.readModel``, generations for the
response cache) and the ``order_changes`` rows after the position it last delivered, and
hands them to its subscribers, in position order, once. The changes themselves never
ride the bus.

Why this shape. Redis pub/sub drops whatever is published while a listener is away
(disconnected, restarting, slow to reconnect), and a bus that carries the changes then
needs its own replay and dedup to be correct (encode/broadcaster stalls silently after a
Redis disconnect, issue #144, and queues without bound per subscriber). Here a message
only says *when* to look, and *what* to deliver is always read from the read model by
position, which is gap-free and committed with the checkpoint: a lost, late, duplicated
or reordered message costs at most one poll interval of delay, never a lost or duplicate
change. So plain pub/sub on one channel is enough (a stream would add retention and
acknowledgements that the read model already provides), and messages coalesce: several
commits while a publish is in flight go out as one message with the highest positions.

Never in the way: publishing is fire-and-forget (the commit path only records the
position and sets an event; a task sends, under the link's timeout), the listener is a
task of its own, and while Redis is down or slow the link is degraded and nothing waits
for it (``link.py``); the tail's own poll delivers meanwhile. On reconnect the listener
wakes a follower step at once, so what was published while it was away is read then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import orjson
from prometheus_client import Histogram

from api.cluster.link import (
    FAILURES,
    RedisLink,
    RedisUnavailable,
    backoff,
    cancel_all,
    describe,
)

log = logging.getLogger("shopfront.redis")
CHANNEL = "shopfront:changes"
# How long the listener waits for a message before it checks that Redis still answers
# (PING): a Redis that stopped answering degrades the bus within about this long.
HEALTH_INTERVAL = 1.0
DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# What a message makes a listening process do: follow now, the log reaching at least the
# given position (None: unknown, just look).
Signal = Callable[[int | None], None]


class ChangeBus:
    def __init__(self, link: RedisLink, on_signal: Signal, channel: str = CHANNEL) -> None:
        self.link = link
        self.on_signal = on_signal
        self.channel = channel
        # Messages from this process are not acted on by it.
        self.process = uuid.uuid4().hex
        self.sent = 0
        self.received = 0
        # Seconds from a leader's publish to its arrival here (the processes' clocks).
        self.delay = Histogram(
            "shopfront_bus_delay_seconds",
            "Time from a projector commit's bus message being published to its arrival in "
            "this process",
            registry=None,
            buckets=DELAY_BUCKETS,
        )
        self._head = 0
        self._applied = 0
        self._kick = asyncio.Event()
        # Set once the first connection attempt has succeeded or failed.
        self._tried = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- publishing (never waits) ---------------------------------------------------------
    def committed(self, head: int) -> None:
        """A command in this process committed events up to ``head``."""
        self._head = max(self._head, head)
        self._kick.set()

    def applied(self, position: int) -> None:
        """This process (the leader) committed projections up to ``position``."""
        self._applied = max(self._applied, position)
        self._kick.set()

    async def _publish_forever(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            payload = self._take_pending()
            if payload is None or not self.link.up:
                continue  # dropped: the other processes' poll delivers it
            with contextlib.suppress(RedisUnavailable):
                await self._send(payload)
                self.sent += 1

    def _take_pending(self) -> bytes | None:
        """The message saying what is pending (and nothing pending any more), or None."""
        if not (self._head or self._applied):
            return None
        message: dict[str, object] = {"from": self.process, "at": time.time()}
        if self._head:
            message["head"] = self._head
        if self._applied:
            message["applied"] = self._applied
        self._head = self._applied = 0
        return orjson.dumps(message)

    async def flush(self) -> None:
        """Publish what is pending, once, without listening first: for a short-lived
        process (``shopfront projections rebuild|retry``: the serving processes learn of
        the new generations at once instead of at their next poll)."""
        payload = self._take_pending()
        if payload is None:
            return
        try:
            async with asyncio.timeout(self.link.timeout):
                await self.link.client.publish(self.channel, payload)
            self.sent += 1
        except FAILURES as error:
            log.warning("could not tell the other processes through Redis: %s", describe(error))

    async def _send(self, payload: bytes) -> None:
        await self.link.call("publish", lambda r: r.publish(self.channel, payload))

    # -- listening ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start publishing and listening; returns once the first connection attempt has
        succeeded or failed (a failure is logged as a warning, and retried)."""
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="bus-listener"),
            asyncio.create_task(self._publish_forever(), name="bus-publisher"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.link.timeout + 2.0):
                await self._tried.wait()

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            subscribed = False
            try:
                subscribed = await self._session()
            except FAILURES as error:
                subscribed = self.link.up
                self.link.lost(f"listening: {describe(error)}")
            self._tried.set()
            failures = 1 if subscribed else failures + 1
            await asyncio.sleep(backoff(failures, self.link.reconnect_max))

    async def _session(self) -> bool:
        """Subscribe and act on messages until Redis fails (raises) or another user of
        the link found it failing (returns). True once subscribed."""
        pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(self.link.timeout):
                await pubsub.subscribe(self.channel)
            self.link.connected()
            self._tried.set()
            # Whatever was published while this process was not listening: look now.
            self.on_signal(None)
            while self.link.up:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEALTH_INTERVAL
                )
                if message is None:
                    async with asyncio.timeout(self.link.timeout):
                        await self.link.client.ping()
                elif message.get("type") == "message":
                    self._received(message["data"])
            return True
        finally:
            with contextlib.suppress(*FAILURES):
                async with asyncio.timeout(self.link.timeout):
                    await pubsub.aclose()

    def _received(self, data: object) -> None:
        try:
            message = orjson.loads(data) if isinstance(data, (bytes, str)) else None
            if not isinstance(message, dict) or message.get("from") == self.process:
                return
            head = max(int(message.get("head", 0)), int(message.get("applied", 0)))
            at = float(message["at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed message on %s", self.channel)
            return
        self.received += 1
        if "applied" in message:
            self.delay.observe(max(time.time() - at, 0.0))
        self.on_signal(head or None)

    async def close(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
