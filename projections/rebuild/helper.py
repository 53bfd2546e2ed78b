"""A rebuild's helper process: a large log is replayed by two processes at once (the
machine's second core). The helper builds the ``replay.HELPED`` projectors' shadows (the
order detail screen, which folds every order and writes the largest tables) from the log
up to the head position read at the start, while the rebuild's own process builds the
others up to the same position. The helper's parked events join the rebuild's before the
swap; the catch-up and the swap are the rebuild's, as without a helper. The helper runs
the same code on the same shadows (SQLite takes their writes one transaction at a time),
and is only used for projectors of the registry, which it can build by name.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from projections.base import Projector
from projections.rebuild import buffer, replay
from projections.rebuild.buffer import BufferedOrderDocs
from projections.rebuild.staging import Staging, attached

logger = logging.getLogger("shopfront.rebuild")


def helped(projectors: Mapping[str, Projector], events: int, minimum: int | None) -> list[str]:
    """The projectors a helper process should build: registry projectors (it builds them
    by name) of ``HELPED``, if the log is large enough and there is a CPU to spare, and if
    some projector is left for this process."""
    from projections.registry import PROJECTORS

    if (
        events < (replay.HELPER_MIN_EVENTS if minimum is None else minimum)
        or (os.cpu_count() or 1) < 2
    ):
        return []
    helped = [n for n in projectors if n in replay.HELPED and projectors[n] is PROJECTORS.get(n)]
    return helped if len(helped) < len(projectors) else []


def replay_with_helper(
    log: Engine,
    live: Engine,
    stage: Staging,
    shadowed: Mapping[str, Projector],
    helped: list[str],
    until: int,
) -> int:
    """Replay up to ``until``: ``helped`` in a helper process, the others here, at the same
    time; returns the position reached (the same for both)."""
    sizes = {"BATCH": replay.BATCH, "DISK_BATCH": replay.DISK_BATCH, "CHUNK": replay.CHUNK}
    sizes["LIMIT"] = buffer.LIMIT
    if replay.HELPER_CRASH_AFTER_BATCHES is not None:
        sizes["CRASH_AFTER_BATCHES"] = replay.HELPER_CRASH_AFTER_BATCHES
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
        built = replay.replay(log, stage.conn, mine, 0, until, commit_each=True)
        replay._flush(stage.conn, mine, replay.CHUNK, full_only=False)
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
        with replay.fewer_collections():  # as in the rebuild's own process
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

    # This process is the helper's own: its modules' settings are set freely.
    replay.BATCH, replay.DISK_BATCH = sizes["BATCH"], sizes["DISK_BATCH"]
    replay.CHUNK, buffer.LIMIT = sizes["CHUNK"], sizes["LIMIT"]
    if "CRASH_AFTER_BATCHES" in sizes:
        replay.batches = _crashing(replay.batches, sizes["CRASH_AFTER_BATCHES"])
    log, live = sa.create_engine(log_url), sa.create_engine(live_url)
    try:
        projectors = {name: PROJECTORS[name] for name in names}
        tables = [table for projector in projectors.values() for table in projector.tables]
        with attached(live, tables) as stage:
            shadowed = replay.shadowed(stage, projectors)
            built = replay.replay(log, stage.conn, shadowed, 0, until, commit_each=True)
            replay._flush(stage.conn, shadowed, replay.CHUNK, full_only=False)
            return built, stage.parked()
    finally:
        log.dispose()
        live.dispose()
