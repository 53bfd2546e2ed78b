"""Appending to the event log inside the command's own transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.events import Event
from domain.write_tables import event_log_head, events

_ADVANCE_HEAD = (
    sa.update(event_log_head)
    .where(event_log_head.c.id == 1)
    .values(position=event_log_head.c.position + sa.bindparam("count"))
)
_READ_HEAD = sa.select(event_log_head.c.position).where(event_log_head.c.id == 1)
_INSERT_EVENT = events.insert()


@dataclasses.dataclass(slots=True)
class Recorder:
    """Collects the events one command produces, to be appended with its state change."""

    command_id: str
    now: dt.datetime
    pending: list[tuple[str, int, Event]] = dataclasses.field(default_factory=list)
    # Set when an idempotent replay returns an earlier result: the position to wait for.
    replayed_position: int | None = None

    def record(self, stream_id: str, stream_version: int, event: Event) -> None:
        self.pending.append((stream_id, stream_version, event))


def append(conn: Connection, recorder: Recorder) -> int | None:
    """Write the recorded events; return the position of the last one (None if none).

    Positions come from a single counter row updated in this transaction: the row lock
    (PostgreSQL) or the database write lock (SQLite) orders appenders, and a rolled-back
    transaction rolls the counter back too, so readers never see a gap or a late filler.
    """
    if not recorder.pending:
        return None
    count = len(recorder.pending)
    conn.execute(_ADVANCE_HEAD, {"count": count})
    last = conn.execute(_READ_HEAD).scalar_one()
    first = last - count + 1
    conn.execute(
        _INSERT_EVENT,
        [
            {
                "position": first + index,
                "stream_id": stream_id,
                "stream_version": version,
                "type": event.type,
                "schema_version": event.SCHEMA_VERSION,
                "payload": orjson.dumps(event.payload()).decode(),
                "occurred_at": recorder.now,
                "command_id": recorder.command_id,
            }
            for index, (stream_id, version, event) in enumerate(recorder.pending)
        ],
    )
    return int(last)
