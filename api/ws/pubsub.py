"""In-process fan-out of committed order changes to live subscriptions.

Subscribers register before they read their snapshot, so nothing committed after the
snapshot can be missed; they drop what the snapshot already covered by version.

A subscription consumed over WebSocket may also have an *express* lane
(:class:`api.ws.fanout.Express`): while its consumer waits with nothing queued, a change
is sent straight to the socket from :meth:`OrderBroker.publish` instead of waking the
consumer's task and passing through the GraphQL stream machinery, which cost more than
the send itself for every subscriber of a broadcast. Whatever the express lane cannot
take (a send that has to wait, a result with errors) goes through the queue, and the
consumer waits for an express send still in flight before it yields the next change, so
a subscriber sees its changes in order either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeAlias

from projections.base import OrderChange

QUEUE_LIMIT = 1000

log = logging.getLogger("shopfront.pubsub")

# What an express lane did with a change: True (sent, or the socket is gone), False (not
# taken: queue it), or a send still under way (the socket's buffer is full).
Delivery: TypeAlias = "bool | Awaitable[None]"
ExpressLane: TypeAlias = Callable[[OrderChange], Delivery]


class SubscriberTooSlow(Exception):
    pass


class Subscription:
    def __init__(self, broker: OrderBroker, key: str) -> None:
        self.broker = broker
        self.key = key
        self.queue: asyncio.Queue[OrderChange | None] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False
        self.express: ExpressLane | None = None
        # Only changes above this version are passed on (None: no filter).
        self._after: int | None = None
        self._waiting = False  # the consumer awaits the queue with nothing left to send
        self._in_flight: asyncio.Future[None] | None = None

    def offer(self, change: OrderChange) -> None:
        in_flight = self._in_flight
        if in_flight is not None and in_flight.done() and self.queue.empty():
            self._in_flight = None  # it reached the socket: nothing to wait for any more
            if not in_flight.cancelled():
                in_flight.exception()  # retrieved; a closed socket ends the stream anyway
        if (
            self.express is not None
            and self._waiting
            and self._in_flight is None
            and self.queue.empty()
        ):
            if self._after is not None and change.version <= self._after:
                return
            try:
                delivery = self.express(change)
            except Exception:  # never let one subscriber stop the fan-out to the others
                log.exception("express delivery failed; queueing the change instead")
                delivery = False
            if delivery is not False:
                self.broker.express_deliveries += 1
                if self._after is not None:
                    self._after = change.version
                if delivery is not True:
                    self._in_flight = asyncio.ensure_future(delivery)
                return
        try:
            self.queue.put_nowait(change)
            self.broker.queued_deliveries += 1
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        self.broker._remove(self)
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def changes(self, after: int | None = None) -> AsyncIterator[OrderChange]:
        """The changes offered from now on, in order; with ``after``, only those of a
        higher version (the ones a snapshot or replay has not covered)."""
        self._after = after
        while True:
            self._waiting = self.queue.empty()
            try:
                change = await self.queue.get()
            finally:
                self._waiting = False
            if change is None:
                if self.overflowed:
                    raise SubscriberTooSlow("Subscriber fell too far behind; resubscribe")
                return
            in_flight, self._in_flight = self._in_flight, None
            if in_flight is not None:
                # The express send before this change: it must reach the socket first.
                with contextlib.suppress(Exception):
                    await in_flight
            if self._after is not None:
                if change.version <= self._after:
                    continue
                self._after = change.version
            yield change


class OrderBroker:
    """Keys: ``order:<id>``, ``customer:<id>``, or ``all`` (staff watching every order)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        # Changes handed to subscriptions: sent on their express lane, or queued.
        self.express_deliveries = 0
        self.queued_deliveries = 0

    def subscribe(self, key: str) -> Subscription:
        subscription = Subscription(self, key)
        self._subscribers[key].add(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.key)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.key]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def publish(self, changes: Sequence[OrderChange]) -> None:
        for change in changes:
            for key in (f"order:{change.order_id}", f"customer:{change.customer_id}", "all"):
                for subscription in tuple(self._subscribers.get(key, ())):
                    subscription.offer(change)
