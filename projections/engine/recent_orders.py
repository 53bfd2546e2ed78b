"""The order documents the order detail projection last committed in this process, so a
mutation's payload can answer without reading the row it just caused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from projections.base import OrderChange

# Order documents kept (the most recently changed).
RECENT_ORDERS = 4096


class RecentOrders:
    def __init__(self, size: int = RECENT_ORDERS) -> None:
        self._size = size
        self._recent: dict[str, OrderChange] = {}  # least recently changed first

    def get(self, order_id: str, position: int) -> Mapping[str, Any] | None:
        """The order's document if it was committed recently, at or after the event at
        ``position``: what reading its row now would give."""
        change = self._recent.get(order_id)
        return None if change is None or change.position < position else change.doc

    def remember(self, changes: Sequence[OrderChange]) -> None:
        recent = self._recent
        for change in changes:
            recent.pop(change.order_id, None)
            recent[change.order_id] = change
        while len(recent) > self._size:
            del recent[next(iter(recent))]

    def clear(self) -> None:
        """Forget them all: rows were changed other than by this process's steps."""
        self._recent.clear()
