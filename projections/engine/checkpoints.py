"""The checkpoint rows: where each projector is, claimed in the same transaction as the
rows a batch produces, and the generation bumped when rows change other than by moving
forward (a rebuild swapped in, parked events retried)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from projections.tables import projection_checkpoints as checkpoints

# Built once (statement construction costs more than running it): move a checkpoint from
# the position we read to the end of the batch, or touch nothing if someone else moved it.
_CLAIM = (
    checkpoints.update()
    .where(
        checkpoints.c.name == sa.bindparam("k_name"),
        checkpoints.c.position == sa.bindparam("k_position"),
    )
    .values(position=sa.bindparam("new_position"), updated_at=sa.bindparam("now"))
)


class CheckpointMoved(Exception):
    """Another runner (another process, or a rebuild) moved the checkpoint under us."""


def claim(conn: Connection, name: str, position: int, new_position: int) -> None:
    """Move ``name``'s checkpoint from ``position`` to ``new_position`` in the caller's
    transaction; raise ``CheckpointMoved`` if it is no longer at ``position``."""
    moved = conn.execute(
        _CLAIM,
        {
            "k_name": name,
            "k_position": position,
            "new_position": new_position,
            "now": dt.datetime.now(dt.UTC),
        },
    )
    if moved.rowcount != 1:
        raise CheckpointMoved(name)


def load_positions(read: Engine, names: Iterable[str]) -> dict[str, int]:
    """Each projector's position, creating the missing checkpoints at 0."""
    names = list(names)
    with read.begin() as conn:
        stored = dict(conn.execute(sa.select(checkpoints.c.name, checkpoints.c.position)).all())
        missing = [name for name in names if name not in stored]
        if missing:
            now = dt.datetime.now(dt.UTC)
            conn.execute(
                checkpoints.insert(),
                [{"name": n, "position": 0, "updated_at": now} for n in missing],
            )
    return {name: int(stored.get(name, 0)) for name in names}


def read_generations(read: Engine) -> dict[str, int]:
    with read.connect() as conn:
        rows = conn.execute(sa.select(checkpoints.c.name, checkpoints.c.generation))
        return {row[0]: int(row[1]) for row in rows}
