"""The leader tells the other processes (the change bus) as soon as the order changes
commit, not after its own subscribers have been sent them: while this process's fan-out
is still under way, the bus has already been told the changes' position."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path

from api.database import create_sync_engine
from domain.bus import CommandBus
from projections.base import OrderChange
from projections.engine.read_side import ReadSide
from projections.registry import PROJECTORS
from tests.conftest import fresh_urls
from tests.integration.integration_support import ShopModel, run_shopper


async def test_the_bus_is_told_before_this_process_fans_out(
    template_dir: Path, tmp_path: Path
) -> None:
    write_url, read_url = fresh_urls(template_dir, tmp_path)
    write = create_sync_engine(write_url, "write")
    log = create_sync_engine(write_url, "log")
    read = create_sync_engine(read_url, "projector")
    bus = CommandBus(write)
    fan_out_may_end = asyncio.Event()
    published: list[int] = []

    async def publish(changes: Sequence[OrderChange]) -> None:
        await fan_out_may_end.wait()  # this process's subscribers, still being sent to
        published.extend(change.position for change in changes)

    told: list[int] = []
    bus_told = asyncio.Event()

    def on_applied(position: int) -> None:
        told.append(position)
        bus_told.set()

    runner = ReadSide(log, read, PROJECTORS, batch_size=10_000, publish=publish)
    runner.on_applied = on_applied
    step: asyncio.Task[int] | None = None
    try:
        await run_shopper(bus, ShopModel(), random.Random(5), 40)
        await runner.load_checkpoints()
        step = asyncio.create_task(runner.step())
        async with asyncio.timeout(10):
            await bus_told.wait()
        assert published == [] and not step.done()
        fan_out_may_end.set()
        async with asyncio.timeout(10):
            assert await step
        # Told once, of the last change's position, which the fan-out then delivered.
        assert published and told == [max(published)]
    finally:
        fan_out_may_end.set()
        if step is not None and not step.done():
            step.cancel()
        runner.close()
        bus.close()
        for engine in (write, log, read):
            engine.dispose()
