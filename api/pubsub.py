"""In-process fan-out of committed order changes to live subscriptions.

Subscribers register before they read their snapshot, so nothing committed after the
snapshot can be missed; they drop what the snapshot already covered by version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

from projections.base import OrderChange

QUEUE_LIMIT = 1000


class SubscriberTooSlow(Exception):
    pass


class Subscription:
    def __init__(self, broker: OrderBroker, key: str) -> None:
        self.broker = broker
        self.key = key
        self.queue: asyncio.Queue[OrderChange | None] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False

    def offer(self, change: OrderChange) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        self.broker._remove(self)
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[OrderChange]:
        while True:
            change = await self.queue.get()
            if change is None:
                if self.overflowed:
                    raise SubscriberTooSlow("Subscriber fell too far behind; resubscribe")
                return
            yield change


class OrderBroker:
    """Keys: ``order:<id>``, ``customer:<id>``, or ``all`` (staff watching every order)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

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
