"""Reading the event log (in the write database) as typed, upcast events. Blocking: runs
on the projection worker thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.events import Event, from_payload, upcast
from domain.write_tables import event_log_head, events
from projections.base import StoredEvent, as_utc


@dataclasses.dataclass(frozen=True, slots=True)
class Undecodable(Event):
    """A stored event that could not be read (unknown type, bad payload, no upcaster)."""

    error: str


def read_events(conn: Connection, after: int, limit: int) -> Sequence[StoredEvent[Event]]:
    return _typed(
        conn.execute(
            sa.select(events)
            .where(events.c.position > after)
            .order_by(events.c.position)
            .limit(limit)
        )
    )


def _decode(row: Any) -> Event:
    try:
        payload = orjson.loads(row.payload)
        return from_payload(row.type, upcast(row.type, row.schema_version, payload))
    except Exception as error:  # a bad stored event must not stop the log: park it
        return Undecodable(f"{type(error).__name__}: {error}")


def _typed(rows: Iterable[Any]) -> list[StoredEvent[Event]]:
    return [
        StoredEvent(
            position=row.position,
            stream_id=row.stream_id,
            stream_version=row.stream_version,
            type=row.type,
            occurred_at=as_utc(row.occurred_at),
            command_id=row.command_id,
            data=_decode(row),
        )
        for row in rows
    ]


def head_position(conn: Connection) -> int:
    head = conn.scalar(sa.select(event_log_head.c.position).where(event_log_head.c.id == 1))
    return int(head or 0)


def occurred_at(conn: Connection, position: int) -> float | None:
    """Unix time of the event at ``position``, or None."""
    at = conn.scalar(sa.select(events.c.occurred_at).where(events.c.position == position))
    return None if at is None else as_utc(at).timestamp()


def read_events_at(conn: Connection, positions: Sequence[int]) -> list[StoredEvent[Event]]:
    """The events at exactly these positions, in position order."""
    found: list[StoredEvent[Event]] = []
    for start in range(0, len(positions), 500):
        chunk = list(positions[start : start + 500])
        found.extend(
            _typed(
                conn.execute(
                    sa.select(events)
                    .where(events.c.position.in_(chunk))
                    .order_by(events.c.position)
                )
            )
        )
    return sorted(found, key=lambda event: event.position)
