"""Read models built live, while commands run, equal the same read models rebuilt from
scratch out of the event log; and both agree with the write model."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.bootstrap import Services
from tests.conftest import fresh_settings
from tests.integration.integration_support import (
    ShopModel,
    assert_snapshots_equal,
    check_invariants,
    rebuild_snapshot,
    run_shopper,
    snapshot,
)

EVERY_KIND = {
    "RegisterCustomer:ok",
    "RegisterCustomer:EMAIL_TAKEN",
    "AddProduct:ok",
    "AddProduct:SKU_TAKEN",
    "RestockProduct:ok",
    "RestockProduct:UNKNOWN_SKU",
    "ChangeProductPrice:ok",
    "PlaceOrder:ok",
    "PlaceOrder:OUT_OF_STOCK",
    "PlaceOrder:UNKNOWN_SKU",
    "PayOrder:ok",
    "PayOrder:INVALID_STATE",
    "PayOrder:NOT_FOUND",
    "CancelOrder:ok",
    "CancelOrder:INVALID_STATE",
    "ShipOrder:ok",
    "ShipOrder:INVALID_STATE",
    "DeliverOrder:ok",
    "DeliverOrder:INVALID_STATE",
}


async def _run_and_compare(
    template_dir: Path, work: Path, rng: random.Random, commands: int, batch_size: int
) -> ShopModel:
    settings = fresh_settings(
        template_dir,
        work / "live",
        projection_batch_size=batch_size,
        projection_poll_interval=0.05,
    )
    services = Services.create(settings)
    await services.start()
    try:
        model = ShopModel()
        await run_shopper(services.bus, model, rng, commands)
        head = await services.runner.head_position()
        assert await services.runner.wait_for(head, 30), "live projections did not catch up"
        assert not services.runner.errors, services.runner.errors
        await services.runner.stop()  # nothing moves while we compare

        await asyncio.to_thread(model.check_write_model, services.write_engine)
        await asyncio.to_thread(check_invariants, services.write_engine, services.projector_engine)
        live = await asyncio.to_thread(snapshot, services.projector_engine)
        rebuilt = await rebuild_snapshot(template_dir, work / "rebuild", services.log_engine)
        assert_snapshots_equal(live, rebuilt)
        return model
    finally:
        await services.close()


# Live batch sizes vary per seed, so the live runner folds different slices of the log than
# the rebuild (which reads 500 at a time).
@pytest.mark.parametrize(("seed", "batch_size"), [(1, 500), (2, 3), (3, 40)])
async def test_live_read_models_equal_a_rebuild(
    template_dir: Path, tmp_path: Path, seed: int, batch_size: int
) -> None:
    model = await _run_and_compare(template_dir, tmp_path, random.Random(seed), 400, batch_size)
    seen = set(model.outcomes)
    assert seen >= EVERY_KIND, f"the run never produced {sorted(EVERY_KIND - seen)}"


@settings(
    max_examples=4,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(rng=st.randoms(use_true_random=False), batch_size=st.sampled_from([1, 7, 500]))
def test_live_read_models_equal_a_rebuild_hypothesis(
    template_dir: Path, rng: random.Random, batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as work:
        asyncio.run(_run_and_compare(template_dir, Path(work), rng, 80, batch_size))
