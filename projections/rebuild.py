"""Rebuild without downtime: replay the event log into shadows of some projectors' tables
while the live ones keep serving, then swap them in one transaction. The projectors
rebuilt together share one pass over the log (read and decoded once).

SQLite: the shadows are tables of the live read database under other names (see
``staging.py``); each batch of the replay commits on its own, so the live runner goes on
in between. Readers (WAL) see the old tables until the swap commits, then the new ones:
never an empty or half-built screen. The swap catches up under the write lock, then drops
the live tables and renames the shadows into their place: no rows are copied. A crash at
any point leaves the live tables as they were; the next rebuild drops the leftovers.

The order screens hold their rows in memory and write them in key order, in transactions
of ``CHUNK`` rows, before the swap (``rebuild_buffer.py``); what the catch-up adds is
written inside the swap's transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import Event
from projections.base import Projector, StoredEvent
from projections.dead_letters import apply_or_park
from projections.event_source import read_events
from projections.order_doc import OrderDocProjector, shared_folds
from projections.read_tables import projection_checkpoints as checkpoints
from projections.rebuild_buffer import BufferedOrderDocs
from projections.staging import DEFERRED, Staging, staging

BATCH = 5000  # events read (and folded by the order screens) at a time
DISK_BATCH = 50_000  # events applied at a time by the projectors that write as they go
CHUNK = 20_000  # rows per write transaction when held rows are written outside the swap


def _batches(log: Engine, after: int, until: int | None) -> Iterator[list[StoredEvent[Event]]]:
    position = after
    while until is None or position < until:
        with log.connect() as log_conn:
            batch = [
                e
                for e in read_events(log_conn, position, BATCH)
                if until is None or e.position <= until
            ]
        if not batch:
            return
        yield batch
        position = batch[-1].position


def _apply(
    conn: Connection,
    projectors: Mapping[str, Projector],
    events: list[StoredEvent[Event]],
    *,
    commit: bool,
) -> None:
    """``events`` applied by ``projectors`` (folded once for all the order screens), in a
    transaction of its own if ``commit``, else in the caller's."""
    if not projectors or not events:
        return
    if commit:
        # Order screens only write memory and the TEMP dead letters: no write lock needed.
        conn.info[DEFERRED] = all(isinstance(p, BufferedOrderDocs) for p in projectors.values())
    with conn.begin() if commit else contextlib.nullcontext(), shared_folds():
        for name, projector in projectors.items():
            apply_or_park(conn, name, projector, events)


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
    the same read of the log (each batch is read and decoded once); in transactions of
    their own if ``commit_each``, else in the caller's. The order screens take each batch
    as it is read; the others, which write the shadow tables as they go (holding the live
    database's write lock), take ``DISK_BATCH`` events at a time: fewer, larger
    statements. Returns the position reached."""
    held = {n: p for n, p in projectors.items() if isinstance(p, BufferedOrderDocs)}
    writing = {n: p for n, p in projectors.items() if n not in held}
    position, pending = after, []
    for batch in _batches(log, after, until):
        _apply(conn, held, batch, commit=commit_each)
        pending.extend(batch)
        if len(pending) >= DISK_BATCH:
            _apply(conn, writing, pending, commit=commit_each)
            pending = []
        if commit_each:
            _flush(conn, projectors, CHUNK, full_only=True)
        position = batch[-1].position
    _apply(conn, writing, pending, commit=commit_each)
    return position


def _flush(
    conn: Connection, projectors: Mapping[str, Projector], chunk: int | None, *, full_only: bool
) -> None:
    """Write the rows the order screens hold (all, or only of those holding too many): in
    transactions of ``chunk`` rows, or in the caller's transaction if None."""
    for projector in projectors.values():
        if isinstance(projector, BufferedOrderDocs) and (projector.full or not full_only):
            projector.flush(conn, chunk)


def _shadowed(stage: Staging, projectors: Mapping[str, Projector]) -> dict[str, Projector]:
    """The projectors writing to the shadows; the order screens hold their rows first."""
    shadowed = {name: stage.retarget(projector) for name, projector in projectors.items()}
    return {
        name: BufferedOrderDocs.of(p) if isinstance(p, OrderDocProjector) else p
        for name, p in shadowed.items()
    }


def rebuild(log: Engine, live: Engine, projectors: Mapping[str, Projector]) -> int:
    """Rebuild ``projectors`` from position 0 in one pass over the log and swap them all in
    at once; return their new checkpoint (the same for all)."""
    tables = [table for projector in projectors.values() for table in projector.tables]
    names = list(projectors)
    with staging(live, tables) as stage:
        shadowed = _shadowed(stage, projectors)
        conn = stage.conn
        built = _replay(log, conn, shadowed, 0, None, commit_each=True)
        _flush(conn, shadowed, CHUNK, full_only=False)  # most rows written before the swap
        with conn.begin():  # BEGIN IMMEDIATE: the live runner waits from here on
            live_position = conn.scalar(
                sa.select(sa.func.max(checkpoints.c.position)).where(checkpoints.c.name.in_(names))
            )
            live_position = int(live_position or 0)
            built = _replay(log, conn, shadowed, built, live_position, commit_each=False)
            _flush(conn, shadowed, None, full_only=False)
            target = max(built, live_position)
            stage.swap(tables, names)
            conn.execute(
                checkpoints.update()
                .where(checkpoints.c.name.in_(names))
                .values(position=target, generation=checkpoints.c.generation + 1)
            )
    return target
