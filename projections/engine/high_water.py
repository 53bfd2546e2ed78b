"""The high-water mark: the head of the event log as this process knows it, how long the
projectors have been behind it, and waiting until they reach a position (read your
writes)."""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
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
        # Waiters by the position each waits for (heap: the lowest first), so that an
        # advance wakes only those it satisfies: a Condition's notify_all woke every
        # waiter on every step, and each took the lock to look (32 concurrent mutations:
        # an eighth of the server's time in place_order profiles).
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
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
        """The projectors moved: wake the waiters whose position they reached."""
        self._release()

    def _release(self) -> None:
        floor = self._reached()
        while self._waiters and self._waiters[0][0] <= floor:
            _, _, done = heapq.heappop(self._waiters)
            if not done.done():  # not given up (timed out, cancelled)
                done.set_result(None)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until every projector has applied ``position``; False on timeout."""
        if self._reached() >= position:
            return True
        self._wake()
        done = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._order), done))
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            return False
        finally:
            # A waiter that gave up stays in the heap until the projectors pass its
            # position (bounded by the waiters of the last timeout), and is skipped.
            self.waiting -= 1
        return True
