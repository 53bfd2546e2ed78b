"""Rebuild without downtime: replay the event log into a shadow copy of a projector's
tables while the live ones keep serving, then swap the rows in one transaction.

SQLite: the shadow is a separate database file, attached to the live read database for
the swap. Readers (WAL) see the old rows until the swap commits, then the new ones: never
an empty or half-built screen. The live runner is held off only during the swap.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from projections.base import Projector
from projections.dead_letters import apply_or_park
from projections.event_source import read_events
from projections.read_tables import metadata
from projections.read_tables import projection_dead_letters as dead

BATCH = 2000


@contextlib.contextmanager
def _shadow_database(live: Engine, tables: list[sa.Table]) -> Iterator[tuple[Engine, Path]]:
    if live.dialect.name != "sqlite":
        raise NotImplementedError("Shadow rebuilds are implemented for SQLite read databases")
    live_file = Path(str(live.url.database))
    folder = Path(tempfile.mkdtemp(prefix="shadow-", dir=live_file.parent))
    path = folder / "shadow.db"
    engine = sa.create_engine(f"sqlite:///{path}")  # private to this rebuild
    try:
        metadata.create_all(engine, tables=tables)
        yield engine, path
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _replay(
    log: Engine, shadow: Engine, name: str, projector: Projector, after: int, until: int | None
) -> int:
    """Apply events after ``after`` (up to ``until``) to the shadow; return the position."""
    position = after
    while until is None or position < until:
        with log.connect() as conn:
            batch = [
                e
                for e in read_events(conn, position, BATCH)
                if until is None or e.position <= until
            ]
        if not batch:
            break
        with shadow.begin() as conn:
            apply_or_park(conn, name, projector, batch)
        position = batch[-1].position
    return position


def rebuild(log: Engine, live: Engine, name: str, projector: Projector) -> int:
    """Rebuild ``projector`` from position 0 and swap it in; return its new checkpoint."""
    tables = [*projector.tables, dead]
    with _shadow_database(live, tables) as (shadow, path):
        built = _replay(log, shadow, name, projector, 0, None)
        raw = live.raw_connection()
        try:
            db = raw.driver_connection
            assert db is not None
            db.execute("ATTACH DATABASE ? AS shadow", (str(path),))
            try:
                db.execute("BEGIN IMMEDIATE")  # the live runner waits from here on
                try:
                    (live_position,) = db.execute(
                        "SELECT position FROM projection_checkpoints WHERE name = ?", (name,)
                    ).fetchone()
                    built = _replay(log, shadow, name, projector, built, live_position)
                    target = max(built, live_position)
                    for table in projector.tables:
                        columns = ", ".join(f'"{c.name}"' for c in table.columns)
                        db.execute(f'DELETE FROM main."{table.name}"')
                        db.execute(
                            f'INSERT INTO main."{table.name}" ({columns}) '
                            f'SELECT {columns} FROM shadow."{table.name}"'
                        )
                    columns = ", ".join(f'"{c.name}"' for c in dead.columns)
                    db.execute("DELETE FROM main.projection_dead_letters WHERE name = ?", (name,))
                    db.execute(
                        f"INSERT INTO main.projection_dead_letters ({columns}) "
                        f"SELECT {columns} FROM shadow.projection_dead_letters"
                    )
                    db.execute(
                        "UPDATE projection_checkpoints"
                        " SET position = ?, generation = generation + 1 WHERE name = ?",
                        (target, name),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("DETACH DATABASE shadow")
        finally:
            raw.close()
    return int(target)
