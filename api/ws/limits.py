"""Per-identity caps on WebSocket connections and live subscriptions, and a per-address
cap on sockets accepted that have not sent connection_init yet."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from api.graphql.errors import ApiError
from domain.commands import Actor


def identity_key(actor: Actor | None, address: str) -> str:
    return f"ip:{address}" if actor is None else f"{actor.role}:{actor.id}"


class ConnectionLimits:
    def __init__(self, max_connections: int, max_subscriptions: int, max_pending: int) -> None:
        self.max_connections = max_connections
        self.max_subscriptions = max_subscriptions
        self.max_pending = max_pending
        self.connections: Counter[str] = Counter()
        self.subscriptions: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()

    def open_pending(self, address: str) -> bool:
        """A socket from ``address`` is about to be accepted, before its connection_init."""
        if self.pending[address] >= self.max_pending:
            return False
        self.pending[address] += 1
        return True

    def end_pending(self, address: str) -> None:
        self.pending[address] -= 1
        if self.pending[address] <= 0:
            del self.pending[address]

    def open_connection(self, key: str) -> bool:
        if self.connections[key] >= self.max_connections:
            return False
        self.connections[key] += 1
        return True

    def close_connection(self, key: str) -> None:
        self.connections[key] -= 1
        if self.connections[key] <= 0:
            del self.connections[key]

    @contextlib.contextmanager
    def subscription(self, key: str) -> Iterator[None]:
        if self.subscriptions[key] >= self.max_subscriptions:
            raise ApiError(
                "TOO_MANY_SUBSCRIPTIONS",
                f"At most {self.max_subscriptions} live subscriptions per user",
            )
        self.subscriptions[key] += 1
        try:
            yield
        finally:
            self.subscriptions[key] -= 1
            if self.subscriptions[key] <= 0:
                del self.subscriptions[key]
