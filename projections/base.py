"""What projectors share: the stored event they read and the shape of a projector."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.events import Event

E = TypeVar("E", bound=Event)
S = TypeVar("S")


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent(Generic[E]):
    position: int
    stream_id: str
    stream_version: int
    type: str
    occurred_at: dt.datetime
    command_id: str
    data: E


@dataclasses.dataclass(frozen=True, slots=True)
class OrderChange:
    """An order as a projection committed it, right after one event: what subscribers get."""

    order_id: str
    customer_id: str
    version: int
    event: str
    occurred_at: dt.datetime
    doc: Mapping[str, Any]
    position: int = 0  # the event's position in the log (0: not known)


@dataclasses.dataclass(frozen=True)
class OneTableProjector:
    """What a projector of a single read table shares: ``table`` is the live table, or a
    rebuild's shadow of it (``staging.Staging.retarget`` replaces the field)."""

    name: str
    table: sa.Table

    @property
    def tables(self) -> tuple[sa.Table, ...]:
        return (self.table,)


class Projector(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[sa.Table, ...]: ...

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        """Apply events in order inside the caller's transaction."""
        ...


# One function per event type a projector cares about, folding that event into the batch's
# pending changes (``S``); the projector writes the folded changes once per batch.
Handlers = Mapping[type[Event], Callable[[S, StoredEvent[Any]], None]]


def fold(handlers: Handlers[S], pending: S, events: Iterable[StoredEvent[Event]]) -> S:
    """Each event handed to the handler of its type (events of other types are skipped)."""
    for ev in events:
        handler = handlers.get(type(ev.data))
        if handler is not None:
            handler(pending, ev)
    return pending


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    """A time as stored in documents: UTC, exactly as the GraphQL DateTime scalar writes it
    (``isoformat()``), so that a screen can hand it on without parsing it again."""
    return as_utc(value).isoformat()
