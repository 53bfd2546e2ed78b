"""The high-water mark: the head of the event log as this process knows it, how long the
projectors have been behind it, and waiting until they reach a position (read your
writes)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable


class HighWater:
    def __init__(self, reached: Callable[[], int], wake: Callable[[], None]) -> None:
        """``reached()``: the position every projector has reached; ``wake()``: ask the
        tail loop to step now."""
        self._reached = reached
        self._wake = wake
        self.head = 0
        # (position, monotonic time) each time the known head moved: how long the
        # projections have been behind, without reading the event log again.
        self._seen: collections.deque[tuple[int, float]] = collections.deque()
        self._advanced = asyncio.Condition()
        # Callers inside ``wait_for`` right now (tests see a request waiting on it).
        self.waiting = 0

    def observe(self, position: int) -> None:
        """The log is known to reach at least ``position``."""
        if position > self.head:
            self.head = position
            self._seen.append((position, time.monotonic()))
        floor = self._reached()
        while len(self._seen) > 1 and self._seen[1][0] <= floor:
            self._seen.popleft()

    def lag_ms(self, position: int) -> float:
        """Milliseconds since this process first knew of an event after ``position``."""
        for seen, at in self._seen:
            if seen > position:
                return (time.monotonic() - at) * 1000
        return 0.0

    async def advanced(self) -> None:
        """The projectors moved: wake the waiters."""
        async with self._advanced:
            self._advanced.notify_all()

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until every projector has applied ``position``; False on timeout."""

        def reached() -> bool:
            return self._reached() >= position

        if reached():
            return True
        self._wake()
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(reached)
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True
