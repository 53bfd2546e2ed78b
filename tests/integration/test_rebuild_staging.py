"""The staging of a rebuild (``projections/rebuild/staging.py``) on its own, on a real
SQLite read database: the events a rebuild parks (its own, and those a helper process
sends it) stay private to its connection until the swap, which then replaces the rebuilt
projectors' parked events in the live dead letters and leaves the others'; the swapped-in
tables are the shadows, under the live names, with their indexes; no shadow is left."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.bootstrap import Services
from projections import read_tables as r
from projections.rebuild import postgres
from projections.rebuild.staging import DEFERRED, Staging, staging
from projections.registry import PROJECTORS

DEAD = r.projection_dead_letters


@pytest.fixture(autouse=True)
def _postgres_lock_tries_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite never reaches PostgreSQL's swap; a mistake that sent it there would retry
    the (failing) table lock for a minute: one second shows it as well."""
    monkeypatch.setattr(postgres, "LOCK_TRIES_FOR", 1.0)


def _letter(name: str, position: int) -> dict[str, Any]:
    return {
        "name": name,
        "position": position,
        "stream_id": f"order-{position}",
        "event_type": "OrderPaid",
        "error": f"poison {position}",
        "parked_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def _keys(rows: Any) -> list[tuple[object, ...]]:
    fields = ("name", "position", "stream_id", "event_type", "error")
    return sorted(tuple(row[f] for f in fields) for row in rows)


def _live_letters(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return _keys(conn.execute(sa.select(DEAD)).mappings())


def _parked(stage: Staging) -> list[tuple[object, ...]]:
    try:
        return _keys(stage.parked())
    finally:
        stage.conn.rollback()  # its read began a transaction (a helper reads it last)


async def test_parked_events_stay_private_until_the_swap_which_replaces_only_the_rebuilts(
    services: Services,
) -> None:
    await services.runner.stop()
    engine = services.projector_engine
    with engine.begin() as conn:
        conn.execute(sa.insert(DEAD), [_letter("order_detail", 1), _letter("catalog", 2)])
        conn.execute(
            r.order_detail.insert().values(order_id="stale", customer_id="c", version=1, doc="{}")
        )
    live_before = _live_letters(engine)
    tables = PROJECTORS["order_detail"].tables
    parked_here, parked_by_helper = [_letter("order_detail", 7)], [_letter("order_detail", 9)]

    with staging(engine, tables) as stage:
        assert _parked(stage) == []
        with stage.conn.begin():
            stage.conn.execute(sa.insert(DEAD), parked_here)  # what its replay parks
        stage.park(parked_by_helper)
        stage.park([])
        assert _parked(stage) == _keys(parked_here + parked_by_helper)
        assert _live_letters(engine) == live_before  # private until the swap
        with stage.conn.begin():
            stage.swap(tables, ["order_detail"])

    assert _live_letters(engine) == _keys([_letter("catalog", 2), *parked_here, *parked_by_helper])
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in tables} <= names
    assert not {n for n in names if n.startswith("shadow_")}
    with engine.connect() as conn:  # the (empty) shadows are the live tables now
        assert conn.scalar(sa.select(sa.func.count()).select_from(r.order_detail)) == 0
    indexes = {i["name"] for t in tables for i in sa.inspect(engine).get_indexes(t.name)}
    assert indexes == {i.name for t in tables for i in t.indexes}


def _other_writer_refused(path: str) -> str | None:
    """Whether another connection that does not wait (busy timeout 0) could start a write
    transaction now: None if it could, else SQLite's error."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        other.close()


@pytest.mark.sqlite_only("SQLite's write lock (PostgreSQL locks rows and tables)")
async def test_a_rebuilds_transactions_hold_the_write_lock_from_their_begin_unless_deferred(
    services: Services,
) -> None:
    """SQLite: from the BEGIN of a rebuild's transaction (the swap's first of all) the live
    runner waits; a transaction marked as writing nothing of the live database
    (``DEFERRED``, the order screens' batches) takes no write lock."""
    await services.runner.stop()
    engine = services.projector_engine
    path = engine.url.database
    assert path and _other_writer_refused(path) is None
    with staging(engine, PROJECTORS["catalog"].tables) as stage:
        with stage.conn.begin():
            assert _other_writer_refused(path) == "database is locked"
        stage.conn.info[DEFERRED] = True
        with stage.conn.begin():
            assert stage.conn.scalar(sa.select(sa.func.count()).select_from(DEAD)) == 0
            assert _other_writer_refused(path) is None
        with stage.conn.begin():  # for one transaction only
            assert _other_writer_refused(path) == "database is locked"


@dataclasses.dataclass(frozen=True)
class _TablesNotFields:
    name: str = "odd"

    @property
    def tables(self) -> tuple[sa.Table, ...]:
        return (r.catalog_products,)


async def test_a_projector_whose_tables_are_not_its_fields_cannot_be_rebuilt(
    services: Services,
) -> None:
    await services.runner.stop()
    refused = pytest.raises(TypeError, match="cannot rebuild odd: tables not given as fields")
    with staging(services.projector_engine, [r.catalog_products]) as stage, refused:
        stage.retarget(_TablesNotFields())  # type: ignore[arg-type]
