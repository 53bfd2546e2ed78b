"""Rebuild without downtime: replay the event log into shadows of some projectors' tables
while the live ones keep serving, then swap them in one transaction. The projectors
rebuilt together share one pass over the log (read and decoded once, ``replay.py``).

The shadows are tables of the live read database under other names
(``staging.py``); each batch of the replay commits on its own, so the live tail goes on in
between. Readers (WAL) see the old tables until the swap commits, then the new ones: never
an empty or half-built screen. The swap catches up under the write lock, then drops the
live tables and renames the shadows into their place: no rows are copied. A crash at any
point leaves the live tables as they were; the next rebuild drops the leftovers. On
PostgreSQL the same, with the locks of ``postgres.py`` (only the rebuilt projectors wait).

The order screens hold their rows in memory and write them before the swap
(``buffer.py``); what the catch-up adds is written inside the swap's transaction. A large
log is replayed by two processes at once (``helper.py``).

The replay's functions are called through their module (``replay._flush``), so that tests
can replace them.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import Engine

from projections.base import Projector
from projections.engine.event_source import head_position
from projections.rebuild import helper, replay
from projections.rebuild.staging import staging
from projections.tables import projection_checkpoints as checkpoints


def rebuild(
    log: Engine,
    live: Engine,
    projectors: Mapping[str, Projector],
    *,
    helper_min_events: int | None = None,
) -> int:
    """Rebuild ``projectors`` from position 0 in one pass over the log and swap them all in
    at once; return their new checkpoint (the same for all). With a log of at least
    ``helper_min_events`` events (default ``replay.HELPER_MIN_EVENTS``) and a second CPU, the
    ``replay.HELPED`` projectors are built by a helper process meanwhile."""
    with replay.fewer_collections():
        return _rebuild(log, live, projectors, helper_min_events)


def _rebuild(
    log: Engine,
    live: Engine,
    projectors: Mapping[str, Projector],
    helper_min_events: int | None,
) -> int:
    tables = [table for projector in projectors.values() for table in projector.tables]
    names = list(projectors)
    with log.connect() as log_conn:
        until = head_position(log_conn)
    helped = helper.helped(projectors, until, helper_min_events)
    with staging(live, tables) as stage:
        shadowed = replay.shadowed(stage, projectors)
        conn = stage.conn
        if helped:
            built = helper.replay_with_helper(log, live, stage, shadowed, helped, until)
        else:
            built = replay.replay(log, conn, shadowed, 0, None, commit_each=True)
            replay._flush(
                conn, shadowed, replay.CHUNK, full_only=False
            )  # most rows written before the swap
        replay.hold_before_swap()
        with conn.begin():  # SQLite: BEGIN IMMEDIATE, the live runner waits from here on
            stage.hold_projectors(names)  # PostgreSQL: the rebuilt projectors' runner waits
            live_position = conn.scalar(
                sa.select(sa.func.max(checkpoints.c.position)).where(checkpoints.c.name.in_(names))
            )
            live_position = int(live_position or 0)
            built = replay.replay(log, conn, shadowed, built, live_position, commit_each=False)
            replay._flush(conn, shadowed, None, full_only=False)
            target = max(built, live_position)
            stage.swap(tables, names)
            conn.execute(
                checkpoints.update()
                .where(checkpoints.c.name.in_(names))
                .values(position=target, generation=checkpoints.c.generation + 1)
            )
    return target
