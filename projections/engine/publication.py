"""Publication to subscribers in commit order: each batch of order changes is published
after the one committed before it, even though each is scheduled as soon as its
projector commits (subscribers need not wait for the projectors applied after it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from projections.base import OrderChange

Publish = Callable[[Sequence[OrderChange]], Awaitable[None]]


class OrderedPublication:
    def __init__(self, publish: Publish | None) -> None:
        self.publish = publish
        # The last publish scheduled: each waits for the one before (commit order).
        self._last: asyncio.Future[None] | None = None

    def schedule(self, changes: Sequence[OrderChange]) -> None:
        """Publish ``changes`` after everything scheduled before (on the event loop)."""
        previous = self._last

        async def publish() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):  # reported by whoever drains it
                    await previous
            if self.publish is not None:
                await self.publish(changes)

        self._last = asyncio.ensure_future(publish())

    async def drain(self) -> None:
        """Wait until everything scheduled so far has gone out; a failed publish raises
        here, once (the pending publishes are taken)."""
        last, self._last = self._last, None
        if last is not None:
            await last
