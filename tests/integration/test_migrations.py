"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from api.bootstrap import Services
from api.database import create_sync_engine
from api.settings import Settings
from domain import commands as c
from domain import write_tables as w
from migrations.runner import config, upgrade
from projections import read_tables as r
from tests.conftest import _env_for, empty_url, fresh_settings
from tests.reliability.support import assert_same_tables, cli_output, read_snapshot, run_cli

DATABASES = {"write": w.metadata, "read": r.metadata}


@pytest.fixture
def urls(template_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Both databases migrated from nothing to head, in new empty databases (files, or
    PostgreSQL databases with --db=postgresql)."""
    found = {which: empty_url(template_dir, tmp_path, which) for which in DATABASES}
    upgrade(found["write"], found["read"])
    return found


@pytest.fixture
def engines(urls: dict[str, str]) -> Iterator[dict[str, Engine]]:
    made = {which: create_sync_engine(url, "log") for which, url in urls.items()}
    try:
        yield made
    finally:
        for engine in made.values():
            engine.dispose()


def _differences(engine: Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("which", list(DATABASES))
def test_migrated_schema_matches_the_metadata(engines: dict[str, Engine], which: str) -> None:
    assert _differences(engines[which], DATABASES[which]) == []


def test_event_log_head_starts_at_zero(engines: dict[str, Engine]) -> None:
    with engines["write"].connect() as conn:
        rows = conn.execute(sa.select(w.event_log_head.c.id, w.event_log_head.c.position)).all()
    assert [tuple(row) for row in rows] == [(1, 0)]


def test_upgrade_again_is_a_no_op(urls: dict[str, str], engines: dict[str, Engine]) -> None:
    upgrade(urls["write"], urls["read"])
    with engines["write"].connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(w.event_log_head)) == 1
    for which, metadata in DATABASES.items():
        assert _differences(engines[which], metadata) == []


@pytest.mark.parametrize("which", list(DATABASES))
def test_downgrade_to_base_and_back(
    urls: dict[str, str], engines: dict[str, Engine], which: str
) -> None:
    cfg = config(which, urls[which])
    command.downgrade(cfg, "base")
    left = set(sa.inspect(engines[which]).get_table_names())
    assert left <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert _differences(engines[which], DATABASES[which]) == []


# -- upgrading populated databases ---------------------------------------------------------
FIRST = "0001"  # the first revision of both databases
STAFF = c.Actor("staff-migrations", "staff")


async def _a_shop(settings: Settings) -> None:
    """Rows the real code writes: products, customers, orders in every state."""
    services = Services.create(settings)
    await services.start()
    try:
        bus = services.bus
        await bus.execute(c.AddProduct(STAFF, "MIG-MUG", "Mug", 1250, 50, "A mug"))
        await bus.execute(c.AddProduct(STAFF, "MIG-TEE", "Tee", 1999, 20))
        await bus.execute(c.RestockProduct(STAFF, "MIG-TEE", 5))
        await bus.execute(c.ChangeProductPrice(STAFF, "MIG-MUG", 1300))
        customers = [
            c.Actor(
                (await bus.execute(c.RegisterCustomer(None, f"mig{n}@example.com", "M"))).entity_id,
                "customer",
            )
            for n in range(2)
        ]
        lines = (c.LineRequest("MIG-MUG", 2), c.LineRequest("MIG-TEE", 1))
        orders = [
            (await bus.execute(c.PlaceOrder(customers[n % 2], lines, f"key-{n}"))).entity_id
            for n in range(5)
        ]
        for n in (1, 2, 3, 4):
            await bus.execute(c.PayOrder(customers[n % 2], orders[n]))
        for n in (2, 3):
            await bus.execute(c.ShipOrder(STAFF, orders[n], "DHL", f"TRK-{n}"))
        await bus.execute(c.DeliverOrder(STAFF, orders[3]))
        await bus.execute(c.CancelOrder(customers[4 % 2], orders[4], "changed my mind"))
        head = await services.runner.head_position()
        assert await services.runner.wait_for(head, 10)
    finally:
        await services.close()


def _copy_rows_as_of_then(source: Path, target: Path) -> dict[str, list[dict[str, Any]]]:
    """Insert ``source``'s rows into ``target`` (a database at an older revision) with raw
    SQL, only the columns each table had then; returns what was inserted, per table."""
    inserted: dict[str, list[dict[str, Any]]] = {}
    with contextlib.closing(sqlite3.connect(target)) as conn:
        conn.row_factory = sqlite3.Row
        conn.execute("ATTACH DATABASE ? AS source", (str(source),))
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM main.sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
            )
        ]
        for table in tables:
            columns = ", ".join(
                f'"{row[1]}"' for row in conn.execute(f'PRAGMA main.table_info("{table}")')
            )
            conn.execute(f'DELETE FROM main."{table}"')  # seeded rows (the head counter)
            conn.execute(
                f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM source."{table}"'
            )
            inserted[table] = _rows(conn, table, columns)
        conn.commit()
        conn.execute("DETACH DATABASE source")
    return inserted


def _rows(conn: sqlite3.Connection, table: str, columns: str) -> list[dict[str, Any]]:
    return sorted(
        (dict(row) for row in conn.execute(f'SELECT {columns} FROM "{table}"')),
        key=lambda row: repr(sorted(row.items())),
    )


@pytest.mark.sqlite_only("copies rows between SQLite files as of the first revision")
async def test_populated_databases_upgrade_through_every_migration(
    template_dir: Path, tmp_path: Path
) -> None:
    source = fresh_settings(template_dir, tmp_path / "source")
    await _a_shop(source)
    old = tmp_path / "old"
    old.mkdir()
    urls = {which: f"sqlite+aiosqlite:///{old}/{which}.db" for which in DATABASES}
    upgrade(urls["write"], urls["read"], revision=FIRST)
    before = {
        which: _copy_rows_as_of_then(tmp_path / "source" / f"{which}.db", old / f"{which}.db")
        for which in DATABASES
    }
    assert len(before["write"]["events"]) >= 15, before["write"]["events"]
    assert before["read"]["order_detail"] and before["read"]["projection_checkpoints"]

    upgrade(urls["write"], urls["read"])

    for which, tables in before.items():
        with contextlib.closing(sqlite3.connect(old / f"{which}.db")) as conn:
            conn.row_factory = sqlite3.Row
            [(version,)] = conn.execute("SELECT version_num FROM alembic_version")
            heads = ScriptDirectory.from_config(config(which, urls[which])).get_heads()
            assert [version] == heads, which
            for table, rows in tables.items():
                columns = ", ".join(f'"{name}"' for name in rows[0]) if rows else "*"
                assert _rows(conn, table, columns) == rows, f"{which}.{table} changed"
            if which == "read":
                # Columns and tables added since: their defaults, and nothing else.
                generations = conn.execute("SELECT generation FROM projection_checkpoints")
                assert {g for (g,) in generations} == {0}
                for table in ("order_changes", "projection_dead_letters", "projection_leader"):
                    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0

    # The upgraded read database takes a rebuild, which gives what the code writes today.
    env = {
        **_env_for(source),
        "SHOPFRONT_WRITE_DATABASE_URL": urls["write"],
        "SHOPFRONT_READ_DATABASE_URL": urls["read"],
    }
    rebuild = await run_cli(env, "projections", "rebuild")
    assert rebuild.returncode == 0, cli_output(rebuild)
    rebuilt = read_snapshot(old / "read.db")
    assert rebuilt["order_changes"], "the rebuild wrote no order history"
    assert_same_tables(rebuilt, read_snapshot(tmp_path / "source" / "read.db"))
