"""Poison events: an event a projector raises on is parked with its error instead of
stopping the projector. Later events of the same stream are parked behind it, so each
order's events still apply in order; other streams go on. ``retry`` re-applies them.

Database failures are not poison: they propagate, and the whole batch is retried later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import Event
from projections.base import OrderChange, Projector, StoredEvent
from projections.engine.event_source import Undecodable, read_events_at
from projections.reads import Query, Row, fetch_all
from projections.tables import projection_checkpoints as checkpoints
from projections.tables import projection_dead_letters as dead

log = logging.getLogger("shopfront.projections")
WAITING = "waiting behind an earlier parked event of this stream"


# Built once: constructing a statement costs more than running this one.
_PARKED_STREAMS = sa.select(dead.c.stream_id).where(dead.c.name == sa.bindparam("name")).distinct()


def parked_streams(conn: Connection, name: str) -> set[str]:
    return set(conn.scalars(_PARKED_STREAMS, {"name": name}))


def _park(conn: Connection, name: str, event: StoredEvent[Event], error: str) -> None:
    conn.execute(
        dead.insert().values(
            name=name,
            position=event.position,
            stream_id=event.stream_id,
            event_type=event.type,
            error=error[:2000],
            parked_at=dt.datetime.now(dt.UTC),
        )
    )


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


class Applied(NamedTuple):
    changes: list[OrderChange]
    parked: bool  # this projector has parked events (from before, or parked now)


def apply_or_park(
    conn: Connection, name: str, projector: Projector, events: Sequence[StoredEvent[Event]]
) -> Applied:
    """Apply ``events`` in the caller's transaction, parking poison events."""
    # stream -> the position from which its events wait (0: parked before this batch).
    # Its events before that position are applied as usual.
    blocked = dict.fromkeys(parked_streams(conn, name), 0)
    parked_now: set[int] = set()

    def waits(event: StoredEvent[Event]) -> bool:
        at = blocked.get(event.stream_id)
        return at is not None and event.position >= at

    def park(event: StoredEvent[Event], error: str) -> None:
        _park(conn, name, event, error)
        parked_now.add(event.position)
        blocked[event.stream_id] = event.position  # before any later block: events in order

    for event in events:
        if isinstance(event.data, Undecodable) and not waits(event):
            park(event, f"cannot read the stored event: {event.data.error}")
    ready = [event for event in events if not waits(event)]
    changes: list[OrderChange] = []
    try:
        with conn.begin_nested():
            changes.extend(projector.apply(conn, ready))
    except sa.exc.OperationalError:
        raise
    except Exception:
        # Someone in the batch is poison: go one by one to find it (and only it).
        changes = []
        for event in ready:
            if waits(event):
                continue
            try:
                with conn.begin_nested():
                    changes.extend(projector.apply(conn, [event]))
            except sa.exc.OperationalError:
                raise
            except Exception as error:
                log.error(
                    "projector %s parked event %d (%s): %s",
                    name,
                    event.position,
                    event.type,
                    _describe(error),
                )
                park(event, _describe(error))
    for event in events:
        if waits(event) and event.position not in parked_now:
            _park(conn, name, event, WAITING)
    return Applied(changes, bool(blocked))


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    name: str
    position: int
    stream_id: str
    event_type: str
    error: str
    parked_at: dt.datetime


def list_dead_letters(conn: Connection, name: str | None = None) -> list[DeadLetter]:
    query = sa.select(dead).order_by(dead.c.name, dead.c.position)
    if name is not None:
        query = query.where(dead.c.name == name)
    return [
        DeadLetter(r.name, r.position, r.stream_id, r.event_type, r.error, r.parked_at)
        for r in conn.execute(query)
    ]


def retry(
    conn: Connection, name: str, projector: Projector, events: Sequence[StoredEvent[Event]]
) -> tuple[int, list[OrderChange]]:
    """Re-apply parked events (given in position order) in the caller's transaction.
    Each stream goes as far as it can; returns (how many applied, their changes)."""
    still_blocked: set[str] = set()
    applied = 0
    changes: list[OrderChange] = []
    for event in events:
        where = (dead.c.name == name) & (dead.c.position == event.position)
        if event.stream_id in still_blocked:
            continue
        if isinstance(event.data, Undecodable):
            error = f"cannot read the stored event: {event.data.error}"
            conn.execute(dead.update().where(where).values(error=error[:2000]))
            still_blocked.add(event.stream_id)
            continue
        try:
            with conn.begin_nested():
                changes.extend(projector.apply(conn, [event]))
                conn.execute(dead.delete().where(where))
        except sa.exc.OperationalError:
            raise
        except Exception as error:
            conn.execute(dead.update().where(where).values(error=_describe(error)[:2000]))
            still_blocked.add(event.stream_id)
            continue
        applied += 1
    return applied, changes


def count_parked(engine: Engine, names: Iterable[str]) -> dict[str, int]:
    """How many events each projector has parked."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dead.c.name, sa.func.count()).group_by(dead.c.name))
        counts: dict[str, int] = {row[0]: row[1] for row in rows}
    return {name: int(counts.get(name, 0)) for name in names}


def retry_parked(
    read_engine: Engine, log_engine: Engine, projectors: Mapping[str, Projector]
) -> tuple[dict[str, tuple[int, int]], list[OrderChange]]:
    """Re-apply the parked events of ``projectors``, each projector in one transaction
    holding its checkpoint row (a live runner waits) and bumping its generation (cached
    answers built on the old rows go stale). Returns, per projector with parked events,
    (applied now, still parked), and the order changes to publish."""
    results: dict[str, tuple[int, int]] = {}
    published: list[OrderChange] = []
    for name, projector in projectors.items():
        with read_engine.begin() as conn:
            conn.execute(
                checkpoints.update()
                .where(checkpoints.c.name == name)
                .values(updated_at=dt.datetime.now(dt.UTC), generation=checkpoints.c.generation + 1)
            )
            letters = list_dead_letters(conn, name)
            if not letters:
                continue
            with log_engine.connect() as log_conn:
                events = read_events_at(log_conn, [d.position for d in letters])
            applied, changes = retry(conn, name, projector, events)
        results[name] = (applied, len(letters) - applied)
        published.extend(changes)
    return results, published


_PARKED_PAGE = Query.of(
    sa.select(dead)
    .where(dead.c.name == sa.bindparam("name"))
    .order_by(dead.c.position)
    .limit(sa.bindparam("limit"))
)


async def parked_page(engine: AsyncEngine, name: str, first: int) -> Sequence[Row]:
    """The first ``first`` events parked by projector ``name``, in log order (for staff)."""
    return await fetch_all(engine, _PARKED_PAGE, {"name": name, "limit": first})
