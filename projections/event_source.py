"""Reading the event log (in the write database) as typed, upcast events. Blocking: runs
on the projection worker thread."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.events import Event, from_payload, upcast
from domain.write_tables import event_log_head, events
from projections.base import StoredEvent, as_utc


def read_events(conn: Connection, after: int, limit: int) -> Sequence[StoredEvent[Event]]:
    rows = conn.execute(
        sa.select(events).where(events.c.position > after).order_by(events.c.position).limit(limit)
    )
    return [
        StoredEvent(
            position=row.position,
            stream_id=row.stream_id,
            stream_version=row.stream_version,
            type=row.type,
            occurred_at=as_utc(row.occurred_at),
            command_id=row.command_id,
            data=from_payload(
                row.type, upcast(row.type, row.schema_version, orjson.loads(row.payload))
            ),
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
