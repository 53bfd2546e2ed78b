"""Rebuild without downtime: replay the event log into a shadow copy of some projectors'
tables while the live ones keep serving, then swap the rows in one transaction. The
projectors rebuilt together share one pass over the log (read and decoded once).

SQLite: the shadow is a separate database file, attached to the live read database for
the swap. Readers (WAL) see the old rows until the swap commits, then the new ones: never
an empty or half-built screen. The live runner is held off only during the swap.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from projections.base import Projector
from projections.dead_letters import apply_or_park
from projections.event_source import read_events
from projections.order_doc import shared_folds
from projections.read_tables import metadata
from projections.read_tables import projection_dead_letters as dead

BATCH = 5000


@contextlib.contextmanager
def _shadow_database(live: Engine, tables: list[sa.Table]) -> Iterator[tuple[Engine, Path]]:
    if live.dialect.name != "sqlite":
        raise NotImplementedError("Shadow rebuilds are implemented for SQLite read databases")
    live_file = Path(str(live.url.database))
    folder = Path(tempfile.mkdtemp(prefix="shadow-", dir=live_file.parent))
    path = folder / "shadow.db"
    engine = sa.create_engine(f"sqlite:///{path}")  # private to this rebuild

    @sa.event.listens_for(engine, "connect")
    def _throwaway(dbapi_conn: Any, _record: Any) -> None:
        # A crash mid-rebuild throws the shadow away: no journal, no fsync needed.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB
        cursor.close()

    try:
        metadata.create_all(engine, tables=tables)
        with engine.begin() as conn:
            # Projectors look rows up by primary key only: the shadow needs no secondary
            # index (the live tables keep theirs, filled by the swap).
            for table in tables:
                for index in table.indexes:
                    conn.execute(sa.schema.DropIndex(index))
        yield engine, path
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _replay(
    log: Engine,
    shadow: Engine,
    projectors: Mapping[str, Projector],
    after: int,
    until: int | None,
) -> int:
    """Apply events after ``after`` (up to ``until``) to the shadow, every projector from
    the same read of the log (each batch is read and decoded once); return the position."""
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
        with shadow.begin() as conn, shared_folds():
            for name, projector in projectors.items():
                apply_or_park(conn, name, projector, batch)
        position = batch[-1].position
    return position


def _copy(db: Any, table: sa.Table) -> None:
    """Replace the live rows of ``table`` by the shadow's (inside the caller's
    transaction): secondary indexes dropped and built again once the rows are in (one sort
    instead of an index insert per row), rows inserted in key order (the table's B-tree is
    appended to, not scattered into)."""
    name = table.name
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    for index in table.indexes:
        db.execute(f'DROP INDEX IF EXISTS main."{index.name}"')
    db.execute(f'DELETE FROM main."{name}"')
    db.execute(
        f'INSERT INTO main."{name}" ({columns}) '
        f'SELECT {columns} FROM shadow."{name}" ORDER BY {key}'
    )
    for index in table.indexes:
        unique = "UNIQUE " if index.unique else ""
        indexed = ", ".join(f'"{c.name}"' for c in index.columns)
        db.execute(f'CREATE {unique}INDEX main."{index.name}" ON "{name}" ({indexed})')


def rebuild(log: Engine, live: Engine, projectors: Mapping[str, Projector]) -> int:
    """Rebuild ``projectors`` from position 0 in one pass over the log and swap them all in
    at once; return their new checkpoint (the same for all)."""
    tables = [table for projector in projectors.values() for table in projector.tables]
    names = list(projectors)
    with _shadow_database(live, [*tables, dead]) as (shadow, path):
        built = _replay(log, shadow, projectors, 0, None)
        raw = live.raw_connection()
        try:
            db = raw.driver_connection
            assert db is not None
            db.execute("ATTACH DATABASE ? AS shadow", (str(path),))
            try:
                db.execute("BEGIN IMMEDIATE")  # the live runner waits from here on
                try:
                    marks = ", ".join("?" * len(names))
                    (live_position,) = db.execute(
                        f"SELECT max(position) FROM projection_checkpoints WHERE name IN ({marks})",
                        names,
                    ).fetchone()
                    live_position = int(live_position or 0)
                    built = _replay(log, shadow, projectors, built, live_position)
                    target = max(built, live_position)
                    for table in tables:
                        _copy(db, table)
                    columns = ", ".join(f'"{c.name}"' for c in dead.columns)
                    db.execute(
                        f"DELETE FROM main.projection_dead_letters WHERE name IN ({marks})", names
                    )
                    db.execute(
                        f"INSERT INTO main.projection_dead_letters ({columns}) "
                        f"SELECT {columns} FROM shadow.projection_dead_letters"
                    )
                    db.executemany(
                        "UPDATE projection_checkpoints"
                        " SET position = ?, generation = generation + 1 WHERE name = ?",
                        [(target, name) for name in names],
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
