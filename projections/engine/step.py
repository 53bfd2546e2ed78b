"""One step's database work, on the tail's worker thread: each projector behind applies
its batch in its own read-database transaction, with its checkpoint claimed in the same
transaction, so that no event is skipped or applied twice."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from domain.events import Event
from migrations.engine import database_unavailable, one_line
from projections.base import OrderChange, Projector, StoredEvent
from projections.engine.checkpoints import CheckpointMoved, claim
from projections.engine.dead_letters import apply_or_park
from projections.engine.kill_hook import KillHook

log = logging.getLogger("shopfront.projections")


@dataclasses.dataclass(slots=True)
class StepOutcome:
    positions: dict[str, int]
    errors: dict[str, str | None]
    changes: list[OrderChange]
    generations: dict[str, int] = dataclasses.field(default_factory=dict)
    dead_letters: dict[str, int] | None = None
    advanced: int = 0
    head: int = 0
    checkpoints_moved: bool = False


def apply_batches(
    read: Engine,
    projectors: Mapping[str, Projector],
    positions: Mapping[str, int],
    batches: Mapping[int, Sequence[StoredEvent[Event]]],
    outcome: StepOutcome,
    *,
    kill_hook: KillHook,
    publish_soon: Callable[[Sequence[OrderChange]], None] | None,
) -> bool:
    """Each projector applies the batch after its position in its own transaction (on one
    connection, while it works); returns whether some event was parked."""
    parked_some = False
    conn: Connection | None = None
    try:
        for name, projector in projectors.items():
            position = positions[name]
            todo = batches[position]
            if not todo:
                continue
            if conn is None:
                conn = read.connect()
            try:
                with conn.begin():
                    # Claim the batch first: if another runner moved the checkpoint, stop
                    # before applying (and tripping over) rows it has written.
                    claim(conn, name, position, todo[-1].position)
                    changes, parked = apply_or_park(conn, name, projector, todo)
                    parked_some = parked_some or parked
                    kill_hook.reached(name)
            except CheckpointMoved:
                outcome.checkpoints_moved = True
                return parked_some
            except Exception as error:  # the database itself failed: retry it later
                outcome.errors[name] = f"{type(error).__name__}: {error}"
                if database_unavailable(error):
                    log.warning(
                        "projector %s: database unavailable after position %d: %s",
                        name,
                        position,
                        one_line(error),
                    )
                else:
                    log.exception("projector %s failed after position %d", name, position)
                conn.close()  # not reused: the next projector gets a fresh one
                conn = None
                continue
            outcome.errors[name] = None
            outcome.positions[name] = todo[-1].position
            outcome.changes.extend(changes)
            if changes and publish_soon is not None:
                publish_soon(changes)
            outcome.advanced = max(outcome.advanced, len(todo))
        return parked_some
    finally:
        if conn is not None:
            conn.close()
