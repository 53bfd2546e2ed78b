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

A large log is replayed by two processes at once (the machine's second core): a helper
process builds the ``HELPED`` projectors' shadows (the order detail screen, about half of
the work: it folds every order and writes the largest tables) from the log up to the
head position read at the start, while this process builds the others up to the same
position. The helper's parked events join this rebuild's before the swap; the catch-up
and the swap are this process's, as without a helper. The helper runs the same code on
the same shadows (SQLite takes their writes one transaction at a time), and it is only
used for projectors of the registry, which it can build by name.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import Event
from projections import rebuild_buffer
from projections.base import Projector, StoredEvent
from projections.dead_letters import apply_or_park
from projections.event_source import head_position, read_events
from projections.order_doc import OrderDocProjector, shared_folds
from projections.read_tables import projection_checkpoints as checkpoints
from projections.rebuild_buffer import BufferedOrderDocs
from projections.staging import DEFERRED, Staging, attached, staging

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
# Test-only: a file path. With it set, a rebuild whose shadow tables are built creates
# "<path>.held" and waits (up to HOLD_TIMEOUT s) for "<path>" before its swap, so that a
# test can prove reads and writes went on while a rebuild was under way. Never set it in
# production.
HOLD_BEFORE_SWAP_ENV = "SHOPFRONT_TEST_HOLD_REBUILD_BEFORE_SWAP"
HOLD_TIMEOUT = 60.0
# Test-only fault injection: the helper process kills itself (SIGKILL) after reading this
# many batches. Never set it in production.
HELPER_CRASH_AFTER_BATCHES: int | None = None


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


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Within this block the garbage collector's young generation runs every
    ``GC_YOUNG_THRESHOLD`` allocations (process-wide: the thresholds are the
    interpreter's); the thresholds are put back after it. Measured at 294,186 events:
    25.6-30.8 s with Python's defaults, 20.7-22.6 s with this."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def rebuild(
    log: Engine,
    live: Engine,
    projectors: Mapping[str, Projector],
    *,
    helper_min_events: int | None = None,
) -> int:
    """Rebuild ``projectors`` from position 0 in one pass over the log and swap them all in
    at once; return their new checkpoint (the same for all). With a log of at least
    ``helper_min_events`` events (default ``HELPER_MIN_EVENTS``) and a second CPU, the
    ``HELPED`` projectors are built by a helper process meanwhile."""
    with fewer_collections():
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
    helped = _helped(projectors, until, helper_min_events)
    with staging(live, tables) as stage:
        shadowed = _shadowed(stage, projectors)
        conn = stage.conn
        if helped:
            built = _replay_with_helper(log, live, stage, shadowed, helped, until)
        else:
            built = _replay(log, conn, shadowed, 0, None, commit_each=True)
            _flush(conn, shadowed, CHUNK, full_only=False)  # most rows written before the swap
        _hold_before_swap()
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


def _hold_before_swap() -> None:
    """See HOLD_BEFORE_SWAP_ENV."""
    release = os.environ.get(HOLD_BEFORE_SWAP_ENV)
    if not release:
        return
    with open(f"{release}.held", "w"):
        pass
    deadline = time.monotonic() + HOLD_TIMEOUT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)


def _helped(projectors: Mapping[str, Projector], events: int, minimum: int | None) -> list[str]:
    """The projectors a helper process should build: registry projectors (it builds them
    by name) of ``HELPED``, if the log is large enough and there is a CPU to spare, and if
    some projector is left for this process."""
    from projections.registry import PROJECTORS

    if events < (HELPER_MIN_EVENTS if minimum is None else minimum) or (os.cpu_count() or 1) < 2:
        return []
    helped = [n for n in projectors if n in HELPED and projectors[n] is PROJECTORS.get(n)]
    return helped if len(helped) < len(projectors) else []


def _replay_with_helper(
    log: Engine,
    live: Engine,
    stage: Staging,
    shadowed: Mapping[str, Projector],
    helped: list[str],
    until: int,
) -> int:
    """Replay up to ``until``: ``helped`` in a helper process, the others here, at the same
    time; returns the position reached (the same for both)."""
    sizes = {"BATCH": BATCH, "DISK_BATCH": DISK_BATCH, "CHUNK": CHUNK}
    sizes["LIMIT"] = rebuild_buffer.LIMIT
    if HELPER_CRASH_AFTER_BATCHES is not None:
        sizes["CRASH_AFTER_BATCHES"] = HELPER_CRASH_AFTER_BATCHES
    urls = (_url(log), _url(live))
    logger.info("rebuild: %s built by a helper process", ", ".join(helped))
    spawn = multiprocessing.get_context("spawn")  # never fork a process with threads
    results, results_end = spawn.Pipe(duplex=False)
    helper = spawn.Process(
        target=_helper_main, args=(results_end, *urls, helped, until, sizes), daemon=True
    )
    helper.start()
    results_end.close()  # the helper's end: reading ours fails once the helper is gone
    try:
        mine = {n: p for n, p in shadowed.items() if n not in helped}
        built = _replay(log, stage.conn, mine, 0, until, commit_each=True)
        _flush(stage.conn, mine, CHUNK, full_only=False)
        try:
            outcome, value = results.recv()
        except EOFError:
            helper.join(5)
            raise RuntimeError(
                f"rebuild helper process died (exit code {helper.exitcode})"
            ) from None
        if outcome != "ok":
            raise RuntimeError(f"rebuild helper process failed: {value}")
        helped_built, parked = value
    finally:  # this process failed, or the helper: stop it before the shadows are dropped
        if helper.is_alive():
            helper.terminate()
        helper.join()
        results.close()
    if helped_built != built:
        raise RuntimeError(f"rebuild helper reached {helped_built}, this process {built}")
    stage.park(parked)
    for name in helped:
        projector = shadowed[name]
        assert isinstance(projector, BufferedOrderDocs)
        projector.held.all_written = True  # the catch-up reads their rows from disk
    return built


def _crashing(batches: Callable[..., Iterator[Any]], after: int) -> Callable[..., Iterator[Any]]:
    def read(*args: Any) -> Iterator[Any]:
        for count, batch in enumerate(batches(*args)):
            if count == after:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch

    return read


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _helper_main(results: Any, *args: Any) -> None:
    """The helper process: ``build_part(*args)``, its outcome sent through ``results``."""
    try:
        with fewer_collections():  # as in the rebuild's own process
            outcome: tuple[str, Any] = ("ok", build_part(*args))
    except Exception as error:  # reported by the rebuild, which then fails
        outcome = ("error", f"{type(error).__name__}: {error}")
    results.send(outcome)
    results.close()


def build_part(
    log_url: str, live_url: str, names: list[str], until: int, sizes: dict[str, int]
) -> tuple[int, list[dict[str, Any]]]:
    """In a rebuild's helper process: replay ``names`` (registry projectors) up to
    ``until`` into the shadows the rebuild created and write all their rows; returns the
    position reached and the events parked."""
    from projections.registry import PROJECTORS

    global BATCH, DISK_BATCH, CHUNK, _batches
    BATCH, DISK_BATCH, CHUNK = sizes["BATCH"], sizes["DISK_BATCH"], sizes["CHUNK"]
    rebuild_buffer.LIMIT = sizes["LIMIT"]
    if "CRASH_AFTER_BATCHES" in sizes:  # this process is the helper's own: patch freely
        _batches = _crashing(_batches, sizes["CRASH_AFTER_BATCHES"])
    log, live = sa.create_engine(log_url), sa.create_engine(live_url)
    try:
        projectors = {name: PROJECTORS[name] for name in names}
        tables = [table for projector in projectors.values() for table in projector.tables]
        with attached(live, tables) as stage:
            shadowed = _shadowed(stage, projectors)
            built = _replay(log, stage.conn, shadowed, 0, until, commit_each=True)
            _flush(stage.conn, shadowed, CHUNK, full_only=False)
            return built, stage.parked()
    finally:
        log.dispose()
        live.dispose()
