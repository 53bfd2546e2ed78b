"""The rebuild's own machinery (``projections/rebuild/``: ``swap.py``, ``staging.py``,
``buffer.py``): shadow tables inside the live read database, swapped in by
renaming; the order screens' rows held in memory and written in key order.

Cut into tiny pieces here (batches of 13 events, 29 for the projectors that write as
they go, rows written every 40 held, in transactions of 7), with poison events in the
log, a rebuild still equals a from-scratch projection, parks the same events, leaves no
shadow table behind, and the schema is the one the metadata declares (leftovers of a
crashed rebuild included); alone, and with a helper process building part of it. A
helper process killed (SIGKILL) mid-replay fails the rebuild and leaves the live tables
and checkpoints as they were.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import multiprocessing
import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from api.bootstrap import Services
from projections import read_tables as r
from projections.rebuild import buffer as rebuild_buffer
from projections.rebuild import replay as rebuild
from projections.registry import PROJECTORS
from tests.integration.integration_support import (
    ShopModel,
    Snapshot,
    assert_snapshots_equal,
    checkpoints,
    replay_snapshot,
    run_shopper,
    snapshot,
)
from tests.reliability.support import Db, RawEvent, append_raw_events, database_of


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, r.metadata))


def _dead_letters(engine: Engine) -> list[tuple[object, ...]]:
    d = r.projection_dead_letters
    query = sa.select(d.c.name, d.c.position, d.c.stream_id, d.c.event_type, d.c.error)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query.order_by(d.c.name, d.c.position))]


def _append_poison(write_db: Db, engine: Engine) -> None:
    """Events no order screen can apply, each the first of its stream (so that what is
    parked does not depend on how the log is cut into batches; see the report of the
    ``rebuild-fast`` branch): an OrderPaid for an order never placed (the order screens
    raise on it), an OrderPlaced whose payload lacks most fields (nobody can read it),
    and an event of each stream behind them."""
    with engine.connect() as conn:
        customer_id = conn.scalar(sa.text("SELECT id FROM customers ORDER BY id LIMIT 1"))
    unknown, unreadable = str(uuid.uuid4()), str(uuid.uuid4())
    ids = {"order_id": unknown, "customer_id": customer_id}
    paid = {**ids, "amount_cents": 5, "lines": []}
    shipped = {**ids, "carrier": "DHL", "tracking_number": "T-1"}
    append_raw_events(
        write_db,
        [
            RawEvent(f"order-{unknown}", 2, "OrderPaid", paid),
            RawEvent(f"order-{unreadable}", 1, "OrderPlaced", {"order_id": unreadable}),
            RawEvent(f"order-{unknown}", 3, "OrderShipped", shipped),
            RawEvent(f"order-{unreadable}", 2, "OrderPaid", {"order_id": unreadable}),
        ],
    )


async def _caught_up_and_stopped(services: Services) -> int:
    """Wait until the live projections reach the log's head, stop the runner (nothing
    moves while a test compares), and return the head."""
    head = await services.runner.head_position()
    assert await services.runner.wait_for(head, 20)
    await services.runner.stop()
    return head


STALE = "00000000-0000-0000-0000-00000000dead"


def _plant_stale_rows(engine: Engine) -> None:
    """Rows the event log does not back, as a buggy projector or a half-applied fix could
    leave them: an order of nobody in the order screens and its change history, and one
    real order's document and history tampered with. A rebuild must replace them all."""
    with engine.begin() as conn:
        order_id, customer_id = conn.execute(
            sa.select(r.order_detail.c.order_id, r.order_detail.c.customer_id).limit(1)
        ).one()
        for table in (r.order_detail, r.order_changes):
            conn.execute(
                table.update().where(table.c.order_id == order_id).values(doc='{"stale": true}')
            )
        conn.execute(
            r.order_detail.insert().values(
                order_id=STALE, customer_id=customer_id, version=1, doc="{}"
            )
        )
        conn.execute(
            r.order_changes.insert().values(
                order_id=STALE,
                version=1,
                event="OrderPlaced",
                occurred_at=dt.datetime.now(dt.UTC),
                doc="{}",
            )
        )


def _assert_no_stale_rows(engine: Engine, replayed: Snapshot) -> None:
    """The live tables equal the replay, and not one planted row survived."""
    live = snapshot(engine)
    for table in ("order_detail", "order_changes"):
        assert not [row for row in live[table] if row["order_id"] == STALE], table
        assert not [row for row in live[table] if row["doc"] == {"stale": True}], table
    assert_snapshots_equal(live, replayed)


def _assert_live_tables_untouched(
    engine: Engine, before: Snapshot, positions: dict[str, int]
) -> None:
    """What a failed rebuild must leave: the live rows and checkpoints, and no shadows."""
    assert_snapshots_equal(snapshot(engine), before)
    assert checkpoints(engine) == positions
    assert not {t for t in _tables(engine) if t.startswith("shadow_")}


@pytest.fixture(params=["alone", "with a helper process"])
def tiny_pieces(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, services: Services
) -> None:
    """Tiny pieces, the rebuild alone or with its helper process building the order detail
    screen beside it (which it does for large logs only)."""
    services.runner.rebuild_helper_min_events = 10**9 if request.param == "alone" else 0
    monkeypatch.setattr(rebuild, "BATCH", 13)
    monkeypatch.setattr(rebuild, "DISK_BATCH", 29)
    monkeypatch.setattr(rebuild, "CHUNK", 7)
    monkeypatch.setattr(rebuild_buffer, "LIMIT", 40)


@pytest.mark.usefixtures("tiny_pieces")
async def test_rebuild_in_tiny_pieces_equals_a_replay_and_parks_the_same(
    services: Services, template_dir: Path, tmp_path: Path
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(21), 250)
    write_db = database_of(services.settings.write_database_url)
    await asyncio.to_thread(_append_poison, write_db, services.write_engine)
    await run_shopper(services.bus, ShopModel(), random.Random(22), 50)  # events after it
    head = await _caught_up_and_stopped(services)
    live_parked = _dead_letters(services.projector_engine)
    # Each projector parks the unreadable stream's two events; the order screens (not
    # the fulfillment queue, which skips orders it has no row for) the unknown order's.
    assert len(live_parked) == 6 * 2 + 2 * 2, live_parked
    engine = services.projector_engine
    _plant_stale_rows(engine)

    await services.runner.rebuild()

    assert checkpoints(engine) == dict.fromkeys(PROJECTORS, head)
    assert _dead_letters(engine) == live_parked
    replayed = await replay_snapshot(template_dir, tmp_path / "replay", services.log_engine)
    _assert_no_stale_rows(engine, replayed)
    assert not {t for t in _tables(engine) if t.startswith("shadow_")}
    assert _schema_differences(engine) == []


async def test_leftovers_of_a_crashed_rebuild_are_dropped_by_the_next(
    services: Services, template_dir: Path, tmp_path: Path
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(23), 120)
    head = await _caught_up_and_stopped(services)
    engine = services.projector_engine
    with engine.begin() as conn:  # what a rebuild killed mid-replay leaves
        conn.exec_driver_sql("CREATE TABLE shadow_order_history (order_id TEXT, doc TEXT)")
        conn.exec_driver_sql("INSERT INTO shadow_order_history VALUES ('x', '{}')")
        conn.exec_driver_sql("CREATE TABLE shadow_catalog_products (junk INTEGER)")
    before = snapshot(engine)

    await services.runner.rebuild(["order_history"])

    assert not {t for t in _tables(engine) if t.startswith("shadow_")}
    assert _schema_differences(engine) == []
    assert_snapshots_equal(snapshot(engine), before)
    assert checkpoints(engine)["order_history"] == head


async def test_a_helper_process_killed_mid_replay_leaves_the_live_tables_as_they_were(
    services: Services, template_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(24), 150)
    head = await _caught_up_and_stopped(services)
    engine = services.projector_engine
    _plant_stale_rows(engine)
    before, positions = snapshot(engine), checkpoints(engine)
    services.runner.rebuild_helper_min_events = 0
    monkeypatch.setattr(rebuild, "BATCH", 13)
    monkeypatch.setattr(rebuild, "HELPER_CRASH_AFTER_BATCHES", 3)  # SIGKILL, mid-replay

    with pytest.raises(RuntimeError, match="helper process died"):
        await services.runner.rebuild()

    _assert_live_tables_untouched(engine, before, positions)
    # The next rebuild (its helper unharmed) is whole again.
    monkeypatch.setattr(rebuild, "HELPER_CRASH_AFTER_BATCHES", None)
    await services.runner.rebuild()
    replayed = await replay_snapshot(template_dir, tmp_path / "replay", services.log_engine)
    _assert_no_stale_rows(engine, replayed)
    assert checkpoints(engine) == dict.fromkeys(PROJECTORS, head)


async def test_a_rebuild_failing_in_its_own_process_stops_its_helper(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(25), 80)
    await _caught_up_and_stopped(services)
    engine = services.projector_engine
    before, positions = snapshot(engine), checkpoints(engine)
    services.runner.rebuild_helper_min_events = 0

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")  # this process fails while its helper still works

    monkeypatch.setattr(rebuild, "_flush", failing)
    with pytest.raises(OSError, match="disk full"):
        await services.runner.rebuild()
    assert multiprocessing.active_children() == []  # the helper was stopped, not left
    _assert_live_tables_untouched(engine, before, positions)


async def test_a_rebuild_collects_garbage_less_often_and_puts_the_thresholds_back(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(26), 40)
    await _caught_up_and_stopped(services)
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []
    fail = False
    flush = rebuild._flush

    def watching(*args: object, **kwargs: object) -> None:
        seen.append(gc.get_threshold())
        if fail:
            raise OSError("disk full")
        flush(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rebuild, "_flush", watching)
    await services.runner.rebuild()
    assert seen and {t[0] for t in seen} == {rebuild.GC_YOUNG_THRESHOLD}
    assert gc.get_threshold() == before

    fail = True  # a rebuild that fails puts them back too
    with pytest.raises(OSError, match="disk full"):
        await services.runner.rebuild()
    assert gc.get_threshold() == before
