"""What the swap of a rebuild (``projections/rebuild/swap.py``) leaves, for some screens
rebuilt while the live projections are behind the log: every table of each rebuilt screen
replaced (none of its old rows live), the screens not rebuilt untouched, and each rebuilt
screen's checkpoint at what its new rows hold, its generation one higher; the others'
checkpoints and generations as they were.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.bootstrap import Services
from projections import read_tables as r
from projections.rebuild.replay import HOLD_BEFORE_SWAP_ENV
from projections.rebuild.swap import rebuild
from tests.integration.integration_support import (
    ShopModel,
    assert_snapshots_equal,
    replay_snapshot,
    run_shopper,
    snapshot,
)

REBUILT = ["order_detail", "catalog"]  # order_detail has two tables: order_detail, order_changes
REBUILT_TABLES = (r.order_detail, r.order_changes, r.catalog_products)
STALE = "00000000-0000-0000-0000-00000000beef"


def _checkpoints(engine: Engine) -> dict[str, tuple[int, int]]:
    c = r.projection_checkpoints
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.c.name, c.c.position, c.c.generation))
        return {str(name): (int(position), int(generation)) for name, position, generation in rows}


def _plant_stale_rows(engine: Engine) -> None:
    """A row the log does not back in each table of the rebuilt screens and in a screen
    that is not rebuilt."""
    with engine.begin() as conn:
        customer_id = conn.scalar(sa.select(r.order_history.c.customer_id).limit(1))
        sku = conn.scalar(sa.select(r.catalog_products.c.sku).limit(1))
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
                occurred_at=conn.scalar(sa.select(sa.func.max(r.order_changes.c.occurred_at))),
                doc="{}",
            )
        )
        conn.execute(
            r.catalog_products.update()
            .where(r.catalog_products.c.sku == sku)
            .values(name="stale name")
        )
        conn.execute(
            r.order_history.update()
            .where(r.order_history.c.customer_id == customer_id)
            .values(doc='{"stale": true}')
        )


async def test_a_rebuild_of_some_screens_swaps_all_their_tables_and_only_their_checkpoints(
    services: Services, template_dir: Path, tmp_path: Path
) -> None:
    await run_shopper(services.bus, ShopModel(), random.Random(31), 80)
    behind = await services.runner.head_position()
    assert await services.runner.wait_for(behind, 20)
    await services.runner.stop()
    # The log moves on while the live projections stay where they are.
    await run_shopper(services.bus, ShopModel(), random.Random(32), 40)
    head = await services.runner.head_position()
    assert head > behind
    engine = services.projector_engine
    _plant_stale_rows(engine)
    before = await asyncio.to_thread(_checkpoints, engine)
    assert {position for position, _ in before.values()} == {behind}, before
    untouched = await asyncio.to_thread(snapshot, engine)

    await services.runner.rebuild(REBUILT)

    after = await asyncio.to_thread(_checkpoints, engine)
    for name, (position, generation) in before.items():
        if name in REBUILT:  # at what the new rows hold (the head), one generation on
            assert after[name] == (head, generation + 1), name
        else:
            assert after[name] == (position, generation), name
    live = await asyncio.to_thread(snapshot, engine)
    replayed = await replay_snapshot(template_dir, tmp_path / "replay", services.log_engine)
    for table in REBUILT_TABLES:  # every table of each rebuilt screen, not one stale row
        assert live[table.name], table.name
        assert_snapshots_equal({table.name: live[table.name]}, {table.name: replayed[table.name]})
    for name in set(live) - {t.name for t in REBUILT_TABLES}:  # the others as they were
        assert live[name] == untouched[name], name
    assert any(row["doc"] == {"stale": True} for row in live["order_history"])


async def _until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_what_the_live_projections_applied_during_a_rebuild_is_in_its_swap(
    services: Services, template_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live runner goes on while a rebuild replays (held before its swap here, as
    ``SHOPFRONT_TEST_HOLD_REBUILD_BEFORE_SWAP`` does); the swap catches up to where the
    live checkpoints got, so the swapped-in rows and checkpoints include those events."""
    runner = services.runner
    await run_shopper(services.bus, ShopModel(), random.Random(33), 80)
    started = await runner.head_position()
    assert await runner.wait_for(started, 20)
    release = tmp_path / "release"
    monkeypatch.setenv(HOLD_BEFORE_SWAP_ENV, str(release))
    chosen = {name: runner.projectors[name] for name in REBUILT}
    engine = services.projector_engine
    before = await asyncio.to_thread(_checkpoints, engine)
    # Beside the live runner (whose own rebuild would take its only thread).
    rebuilding = asyncio.create_task(
        asyncio.to_thread(rebuild, services.log_engine, engine, chosen, helper_min_events=10**9)
    )
    held = Path(f"{release}.held")
    await _until(lambda: held.exists() or rebuilding.done(), "the rebuild never held")
    assert not rebuilding.done()
    await run_shopper(services.bus, ShopModel(), random.Random(34), 40)  # the live tail
    head = await runner.head_position()
    assert head > started
    assert await runner.wait_for(head, 20)
    await runner.stop()  # nothing moves from here on but the rebuild's swap
    assert {p for p, _ in (await asyncio.to_thread(_checkpoints, engine)).values()} == {head}
    release.touch()
    assert await asyncio.wait_for(rebuilding, 60) == head

    after = await asyncio.to_thread(_checkpoints, engine)
    for name, (_, generation) in before.items():
        assert after[name] == (head, generation + (name in REBUILT)), name
    live = await asyncio.to_thread(snapshot, engine)
    replayed = await replay_snapshot(template_dir, tmp_path / "replay", services.log_engine)
    assert_snapshots_equal(live, replayed)
