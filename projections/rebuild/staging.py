"""Where a rebuild builds its rows: shadow tables inside the live read database, under
other names (``shadow_<table>``), so that the swap renames tables instead of copying rows.

The rebuild works on a private connection to the live database. On it, a TEMP table
``projection_dead_letters`` hides the live one (SQLite looks unqualified names up in
``temp`` first): the events the rebuild parks stay private until the swap.

On SQLite the live file takes one writer at a time: each batch of the rebuild is a short
write transaction of its own, so the live runner goes on in between. What differs on
PostgreSQL (names, the TEMP table, the locks of the swap) is in ``postgres.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from projections.base import Projector
from projections.rebuild import postgres
from projections.tables import projection_dead_letters as dead

PREFIX = "shadow_"
DEFERRED = "shopfront_rebuild_deferred"  # conn.info key: the next BEGIN takes no write lock


def _private_engine(live: Engine) -> Engine:
    """One connection of our own to the live file (its TEMP table must not leak into the
    live engine's pool), tuned like the projectors' engine."""
    if live.dialect.name != "sqlite":
        return postgres.private_engine(live)
    engine = sa.create_engine(live.url, poolclass=sa.pool.StaticPool)

    @sa.event.listens_for(engine, "connect")
    def _tune(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN is ours to emit
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB
        # Debian's SQLite zeroes every freed page (secure_delete=ON): dropping the old
        # tables at the swap would write them all again (docs/performance.md). FAST still
        # zeroes what is deleted in place, not pages sent to the freelist: the dropped
        # rows' bytes stay in free pages until reused (they are the rebuilt rows' old
        # versions, from the same event log).
        cursor.execute("PRAGMA secure_delete=FAST")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # The write lock up front (no deadlock upgrading a read lock), unless the
        # transaction writes nothing of the live database (``conn.info[DEFERRED]``, set
        # for one transaction).
        conn.exec_driver_sql("BEGIN" if conn.info.pop(DEFERRED, False) else "BEGIN IMMEDIATE")

    return engine


def _shadow_of(table: sa.Table, metadata: sa.MetaData) -> sa.Table:
    return table.to_metadata(metadata, name=PREFIX + table.name)


def drop_leftovers(conn: Connection) -> None:
    """Drop the shadow tables a crashed (or failed) rebuild left behind."""
    if conn.dialect.name != "sqlite":
        postgres.drop_leftovers(conn)
        return
    names = conn.scalars(
        sa.text(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND substr(name, 1, :n) = :p"
        ),
        {"n": len(PREFIX), "p": PREFIX},
    )
    for name in list(names):
        conn.exec_driver_sql(f'DROP TABLE main."{name}"')


@dataclasses.dataclass(frozen=True)
class Staging:
    conn: Connection  # the private connection, with the TEMP dead letters table
    shadows: dict[str, sa.Table]  # live table name -> its shadow

    def retarget(self, projector: Projector) -> Projector:
        """The same projector, writing to the shadows of its tables: a dataclass whose
        ``sa.Table`` fields are its tables (as every projector of ``registry.py`` is)."""
        if not projector.tables:
            return projector
        moved: dict[str, sa.Table] = {}
        if dataclasses.is_dataclass(projector):
            for field in dataclasses.fields(projector):
                value = getattr(projector, field.name)
                if isinstance(value, sa.Table):
                    moved[field.name] = self.shadows[value.name]
        copy: Projector = dataclasses.replace(projector, **moved)  # type: ignore[type-var]
        if {t.name for t in copy.tables} != {PREFIX + t.name for t in projector.tables}:
            raise TypeError(f"cannot rebuild {projector.name}: tables not given as fields")
        return copy

    def parked(self) -> list[dict[str, Any]]:
        """The events this connection's rebuild parked so far (its TEMP dead letters)."""
        temp_dead = _dead_tables(self.conn)[1]
        return [dict(row._mapping) for row in self.conn.execute(sa.select(temp_dead))]

    def park(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add events parked elsewhere (by a helper process) to this rebuild's."""
        if rows:
            with self.conn.begin():
                self.conn.execute(sa.insert(_dead_tables(self.conn)[1]), list(rows))

    def hold_projectors(self, names: Sequence[str]) -> None:
        """First in the swap's transaction: the live runner's batches of ``names`` wait
        until it commits (SQLite: its BEGIN IMMEDIATE already holds every writer)."""
        if self.conn.dialect.name != "sqlite":
            postgres.hold_projectors(self.conn, names)

    def swap(self, tables: Iterable[sa.Table], names: Sequence[str]) -> None:
        """In the caller's transaction: the shadows become the live tables (secondary
        indexes built under their own names), and the parked events of ``names`` become
        the rebuild's."""
        if self.conn.dialect.name != "sqlite":
            postgres.swap(self.conn, tables, names, *_dead_tables(self.conn))
            return
        for table in tables:
            self.conn.exec_driver_sql(f'DROP TABLE main."{table.name}"')
            self.conn.exec_driver_sql(
                f'ALTER TABLE main."{PREFIX}{table.name}" RENAME TO "{table.name}"'
            )
            for index in table.indexes:
                self.conn.execute(sa.schema.CreateIndex(index))
        self.conn.execute(sa.delete(_main_dead).where(_main_dead.c.name.in_(names)))
        self.conn.execute(
            sa.insert(_main_dead).from_select(list(dead.c.keys()), sa.select(_temp_dead))
        )


_main_dead = dead.to_metadata(sa.MetaData(), schema="main")
_temp_dead = dead.to_metadata(sa.MetaData(), schema="temp")  # created without its index


def _dead_tables(conn: Connection) -> tuple[sa.Table, sa.Table]:
    """The live dead letters and the rebuild connection's TEMP ones."""
    if conn.dialect.name == "sqlite":
        return _main_dead, _temp_dead
    return postgres.dead_tables(conn)


def _shadows(tables: Sequence[sa.Table]) -> dict[str, sa.Table]:
    metadata = sa.MetaData()
    return {table.name: _shadow_of(table, metadata) for table in tables}


@contextlib.contextmanager
def attached(live: Engine, tables: Sequence[sa.Table]) -> Iterator[Staging]:
    """The shadows of ``tables`` that another connection's ``staging`` created (for a
    rebuild's helper process), on a private connection with its own TEMP dead letters.
    Nothing is created in or dropped from the live database."""
    engine = _private_engine(live)
    try:
        with engine.connect() as conn:
            with conn.begin():
                conn.execute(sa.schema.CreateTable(_dead_tables(conn)[1]))
            yield Staging(conn, _shadows(tables))
    finally:
        engine.dispose()


@contextlib.contextmanager
def staging(live: Engine, tables: Sequence[sa.Table]) -> Iterator[Staging]:
    """Empty shadows of ``tables`` in the live database (leftovers dropped first), without
    secondary indexes (projectors look rows up by primary key; the swap builds them).
    Whatever is not swapped in is dropped on the way out."""
    shadows = _shadows(tables)
    engine = _private_engine(live)
    try:
        with engine.connect() as conn:
            with conn.begin():
                drop_leftovers(conn)
                for shadow in shadows.values():
                    conn.execute(sa.schema.CreateTable(shadow))
                conn.execute(sa.schema.CreateTable(_dead_tables(conn)[1]))
            try:
                yield Staging(conn, shadows)
            finally:
                if conn.in_transaction():
                    conn.rollback()
                with conn.begin():
                    drop_leftovers(conn)
    finally:
        engine.dispose()
