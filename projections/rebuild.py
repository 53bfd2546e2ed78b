"""Rebuild without downtime: replay the event log into shadows of some projectors' tables
while the live ones keep serving, then swap them in one transaction. The projectors
rebuilt together share one pass over the log (read and decoded once).

SQLite: the shadows are tables of the live read database under other names (see
``staging.py``); each batch of the replay commits on its own, so the live runner goes on
in between. Readers (WAL) see the old tables until the swap commits, then the new ones:
never an empty or half-built screen. The swap catches up under the write lock, then drops
the live tables and renames the shadows into their place: no rows are copied. A crash at
any point leaves the live tables as they were; the next rebuild drops the leftovers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from projections.base import Projector
from projections.dead_letters import apply_or_park
from projections.event_source import read_events
from projections.order_doc import shared_folds
from projections.read_tables import projection_checkpoints as checkpoints
from projections.staging import staging

BATCH = 5000


def _replay(
    log: Engine,
    conn: Connection,
    projectors: Mapping[str, Projector],
    after: int,
    until: int | None,
    *,
    commit_each: bool,
) -> int:
    """Apply events after ``after`` (up to ``until``) on ``conn``, every projector from
    the same read of the log (each batch is read and decoded once); each batch in its own
    transaction if ``commit_each``, else in the caller's. Returns the position reached."""
    position = after
    while until is None or position < until:
        with log.connect() as log_conn:
            batch = [
                e
                for e in read_events(log_conn, position, BATCH)
                if until is None or e.position <= until
            ]
        if not batch:
            break
        with conn.begin() if commit_each else contextlib.nullcontext(), shared_folds():
            for name, projector in projectors.items():
                apply_or_park(conn, name, projector, batch)
        position = batch[-1].position
    return position


def rebuild(log: Engine, live: Engine, projectors: Mapping[str, Projector]) -> int:
    """Rebuild ``projectors`` from position 0 in one pass over the log and swap them all in
    at once; return their new checkpoint (the same for all)."""
    tables = [table for projector in projectors.values() for table in projector.tables]
    names = list(projectors)
    with staging(live, tables) as stage:
        shadowed = {name: stage.retarget(p) for name, p in projectors.items()}
        conn = stage.conn
        built = _replay(log, conn, shadowed, 0, None, commit_each=True)
        with conn.begin():  # BEGIN IMMEDIATE: the live runner waits from here on
            live_position = conn.scalar(
                sa.select(sa.func.max(checkpoints.c.position)).where(checkpoints.c.name.in_(names))
            )
            live_position = int(live_position or 0)
            built = _replay(log, conn, shadowed, built, live_position, commit_each=False)
            target = max(built, live_position)
            stage.swap(tables, names)
            conn.execute(
                checkpoints.update()
                .where(checkpoints.c.name.in_(names))
                .values(position=target, generation=checkpoints.c.generation + 1)
            )
    return target
