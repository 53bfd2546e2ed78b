"""What the swap of a rebuild (``projections/rebuild/swap.py``) leaves, for some screens
rebuilt while the live projections are behind the log: every table of each rebuilt screen
replaced (none of its old rows live), the screens not rebuilt untouched, and each rebuilt
screen's checkpoint at what its new rows hold, its generation one higher; the others'
checkpoints and generations as they were.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from api.bootstrap import Services
from projections import read_tables as r
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
