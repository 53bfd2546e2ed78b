"""A rebuild's replay: the event log applied to the shadows of some projectors' tables, every
projector from the same read of the log (each batch read and decoded once), and the
settings of a rebuild (batch sizes, the helper process).

The order screens hold their rows in memory and write them in key order, in transactions
of ``CHUNK`` rows (``buffer.py``); the others write the shadow tables as they go.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator, Mapping

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import Event
from projections.base import Projector, StoredEvent
from projections.engine.dead_letters import apply_or_park
from projections.engine.event_source import read_events
from projections.order_doc import OrderDocProjector, shared_folds
from projections.rebuild.buffer import BufferedOrderDocs
from projections.rebuild.staging import DEFERRED, Staging

logger = logging.getLogger("shopfront.rebuild")

BATCH = 5000  # events read (and folded by the order screens) at a time
DISK_BATCH = 50_000  # events applied at a time by the projectors that write as they go
CHUNK = 20_000  # rows per write transaction when held rows are written outside the swap
# Objects allocated between two young garbage collections while a rebuild runs (Python's
# default is 700): a rebuild allocates millions that live for one batch, and each young
# collection also walks the batch still being built; the full collections still run.
GC_YOUNG_THRESHOLD = 50_000
HELPED = frozenset({"order_detail"})  # built by a helper process when the log is large
HELPER_MIN_EVENTS = 50_000  # below this, starting a process costs more than it saves
# Test-only fault injection: the helper process kills itself (SIGKILL) after reading this
# many batches. Never set it in production.
HELPER_CRASH_AFTER_BATCHES: int | None = None
# Test-only: a file path. With it set, a rebuild whose shadow tables are built creates
# "<path>.held" and waits (up to HOLD_TIMEOUT s) for "<path>" before its swap, so that a
# test can prove reads and writes went on while a rebuild was under way. Never set it in
# production.
HOLD_BEFORE_SWAP_ENV = "SHOPFRONT_TEST_HOLD_REBUILD_BEFORE_SWAP"
HOLD_TIMEOUT = 60.0


def hold_before_swap() -> None:
    """See HOLD_BEFORE_SWAP_ENV."""
    release = os.environ.get(HOLD_BEFORE_SWAP_ENV)
    if not release:
        return
    with open(f"{release}.held", "w"):
        pass
    deadline = time.monotonic() + HOLD_TIMEOUT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)


def batches(log: Engine, after: int, until: int | None) -> Iterator[list[StoredEvent[Event]]]:
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


def replay(
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
    for batch in batches(log, after, until):
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


def shadowed(stage: Staging, projectors: Mapping[str, Projector]) -> dict[str, Projector]:
    """The projectors writing to the shadows; the order screens hold their rows first."""
    shadowed = {name: stage.retarget(projector) for name, projector in projectors.items()}
    return {
        name: BufferedOrderDocs.of(p) if isinstance(p, OrderDocProjector) else p
        for name, p in shadowed.items()
    }


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Within this block the garbage collector's young generation runs every
    ``GC_YOUNG_THRESHOLD`` allocations (process-wide: the thresholds are the
    interpreter's); the thresholds are put back after it. A rebuild allocates millions of
    objects that live for one batch (docs/performance.md has the measurements)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
