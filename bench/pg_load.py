"""The SQLite data set's rows loaded into PostgreSQL databases migrated by ``shopfront
migrate``: both engines then serve the very same customers, products, orders, events and
read rows (ids included). Values go through COPY in text form, as SQLite stores them
(timestamps in UTC, booleans 0/1, JSON as text); foreign keys are not checked while
loading (the rows come from a consistent database)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from bench.raw_writes_pg import conninfo

# Not data: Alembic's own row, and who leads the projectors (each server elects its own).
SKIPPED = ("alembic_version", "projection_leader")
SERIALS = (
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = 'public' AND column_default LIKE 'nextval(%'"
)


def _tables(source: sqlite3.Connection) -> list[str]:
    rows = source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [name for (name,) in rows if name not in SKIPPED]


def load(database: Path, url: str) -> int:
    """Replace the rows of every table of ``database`` (a SQLite file) in the PostgreSQL
    database at ``url`` (same schema); the rows copied."""
    source = sqlite3.connect(database)
    copied = 0
    try:
        tables = _tables(source)
        with psycopg.connect(conninfo(url)) as conn, conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SET session_replication_role = replica")  # no FK triggers
            cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))
            for table in tables:
                found = source.execute(f'SELECT * FROM "{table}"')
                columns = ", ".join(f'"{d[0]}"' for d in found.description)
                with cur.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                    for values in found:
                        copy.write_row(values)
                        copied += 1
            for table, column in cur.execute(SERIALS).fetchall():
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f'coalesce(max("{column}"), 0) + 1, false) FROM "{table}"',
                    (table, column),
                )
            cur.execute("RESET session_replication_role")
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            conn.execute("ANALYZE")
    finally:
        source.close()
    return copied
