"""A rebuild's shadows on PostgreSQL: what differs from SQLite (``staging.py``).

The shadow tables live in the read database's own schema (``shadow_<table>``), each
batch of the replay commits on its own, so the live runner goes on in between (PostgreSQL
takes many writers; the shadows are nobody else's). The events the rebuild parks go to a
TEMP ``projection_dead_letters`` of the rebuild's connection, which hides the live one for
unqualified names (PostgreSQL looks in ``pg_temp`` first), as on SQLite.

The swap's transaction first locks the rebuilt projectors' checkpoint rows: the live
runner claims a checkpoint row before it writes a batch (``engine/checkpoints.py``), so
from then on their batches wait, and one already under way is finished before. Then it
takes the live tables (ACCESS EXCLUSIVE: readers wait for the swap's few statements, and
the swap waits for readers already in a transaction). That lock is tried with a short
``lock_timeout`` inside a savepoint and tried again, so that a reader holding one table
while it waits for another cannot deadlock with the swap: the swap steps back, the reader
finishes, and nothing the swap did so far (the catch-up) is lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from projections.tables import projection_checkpoints as checkpoints
from projections.tables import projection_dead_letters as dead

PREFIX = "shadow_"
LOCK_TRY_MS = 200  # how long one try waits for the live tables
LOCK_TRIES_FOR = 60.0  # seconds of tries before the swap gives up (and rolls back)


def private_engine(live: Engine) -> Engine:
    """One connection of our own (its TEMP table must not leak into the live pool)."""
    return sa.create_engine(live.url, poolclass=sa.pool.StaticPool)


def dead_tables(conn: Connection) -> tuple[sa.Table, sa.Table]:
    """The live dead letters (in the schema the live tables are in) and this connection's
    TEMP ones."""
    schema = conn.scalar(sa.text("SELECT current_schema()"))
    return (
        dead.to_metadata(sa.MetaData(), schema=schema),
        dead.to_metadata(sa.MetaData(), schema="pg_temp"),
    )


def drop_leftovers(conn: Connection) -> None:
    """Drop the shadow tables a crashed (or failed) rebuild left behind."""
    names = conn.scalars(
        sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND left(tablename, :n) = :p"
        ),
        {"n": len(PREFIX), "p": PREFIX},
    )
    for name in list(names):
        conn.exec_driver_sql(f'DROP TABLE "{name}"')


def hold_projectors(conn: Connection, names: Sequence[str]) -> None:
    """In the swap's transaction: the live runner's batches of ``names`` wait from now on
    (their checkpoint rows are ours until the swap commits)."""
    conn.execute(
        sa.select(checkpoints.c.name)
        .where(checkpoints.c.name.in_(sorted(names)))
        .order_by(checkpoints.c.name)
        .with_for_update()
    )


def _lock_live(conn: Connection, tables: Sequence[sa.Table]) -> None:
    names = ", ".join(f'"{table.name}"' for table in tables)
    deadline = time.monotonic() + LOCK_TRIES_FOR
    while True:
        savepoint = conn.begin_nested()
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TRY_MS}")
            conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
        except OperationalError:  # lock_timeout (or a deadlock): step back, try again
            savepoint.rollback()
            if time.monotonic() > deadline:
                raise
            continue
        conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        savepoint.commit()
        return


def swap(
    conn: Connection,
    tables: Iterable[sa.Table],
    names: Sequence[str],
    main_dead: sa.Table,
    temp_dead: sa.Table,
) -> None:
    """In the caller's transaction: the shadows become the live tables (their
    constraints renamed as the live ones were, secondary indexes built), and the parked
    events of ``names`` become the rebuild's."""
    tables = list(tables)
    _lock_live(conn, tables)
    for table in tables:
        conn.exec_driver_sql(f'DROP TABLE "{table.name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{PREFIX}{table.name}" RENAME TO "{table.name}"')
        renamed = conn.scalars(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                "AND left(conname, :n) = :p"
            ),
            {"t": f'"{table.name}"', "n": len(PREFIX), "p": PREFIX},
        )
        for constraint in list(renamed):
            conn.exec_driver_sql(
                f'ALTER TABLE "{table.name}" RENAME CONSTRAINT "{constraint}" '
                f'TO "{constraint[len(PREFIX) :]}"'
            )
        for index in table.indexes:
            conn.execute(sa.schema.CreateIndex(index))
    conn.execute(sa.delete(main_dead).where(main_dead.c.name.in_(names)))
    conn.execute(sa.insert(main_dead).from_select(list(dead.c.keys()), sa.select(temp_dead)))
