"""Following projections that another process applies: where the checkpoints are (each
projector's position and generation, from the read database), the head of the log, and
the order changes committed after the last one this process delivered, read back from
the changes table by position so that this process's subscribers get them too.

A change row commits in the same transaction as its projector's checkpoint, so every row
up to the checkpoint read first is visible to the read after it: reading up to that
checkpoint (never past it) misses nothing and, with the position delivered so far,
delivers nothing twice. Runs on the tail's worker thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from projections.base import OrderChange, Projector, as_utc
from projections.engine.event_source import head_position
from projections.tables import projection_checkpoints as checkpoints

# Change rows delivered per pass at most; the next pass follows at once.
CHANGES_PER_PASS = 1000


@dataclasses.dataclass(slots=True)
class Followed:
    positions: dict[str, int]
    generations: dict[str, int]
    head: int
    changes: list[OrderChange]
    # The position up to which changes have now been delivered, and whether more wait.
    delivered: int
    more: bool


def changes_table(projectors: Iterable[Projector]) -> tuple[str, sa.Table] | None:
    """The projector whose commits are published to subscribers, and its changes table."""
    for projector in projectors:
        table = getattr(projector, "changes_table", None)
        if isinstance(table, sa.Table):
            return projector.name, table
    return None


def follow(
    read: Engine,
    log: Engine,
    names: Iterable[str],
    source: tuple[str, sa.Table] | None,
    delivered: int,
) -> Followed:
    with read.connect() as conn:
        rows = conn.execute(
            sa.select(checkpoints.c.name, checkpoints.c.position, checkpoints.c.generation)
        ).all()
        stored = {str(row[0]): (int(row[1]), int(row[2])) for row in rows}
        positions = {name: stored.get(name, (0, 0))[0] for name in names}
        generations = {name: generation for name, (_, generation) in stored.items()}
        changes: list[OrderChange] = []
        more = False
        if source is not None:
            publisher, table = source
            upto = positions.get(publisher, 0)
            if upto > delivered:
                found = conn.execute(
                    sa.select(table)
                    .where(table.c.position > delivered, table.c.position <= upto)
                    .order_by(table.c.position)
                    .limit(CHANGES_PER_PASS)
                ).all()
                changes = [_change(row) for row in found]
                more = len(found) == CHANGES_PER_PASS
                delivered = int(found[-1].position) if more else upto
    with log.connect() as conn:
        head = head_position(conn)
    return Followed(positions, generations, head, changes, delivered, more)


def _change(row: sa.Row[tuple[object, ...]]) -> OrderChange:
    doc = orjson.loads(row.doc)
    return OrderChange(
        row.order_id,
        doc["customer_id"],
        row.version,
        row.event,
        as_utc(row.occurred_at),
        doc,
        int(row.position),
    )
