"""Read-your-writes waits (projections/engine/high_water.py): a waiter returns once every
projector has reached its position, not before; an advance releases exactly the waiters
it satisfies; a waiter that gives up returns False and leaves the others waiting."""

from __future__ import annotations

import asyncio

from projections.engine.high_water import HighWater


class Projectors:
    def __init__(self) -> None:
        self.position = 0
        self.wakes = 0

    def reached(self) -> int:
        return self.position

    def wake(self) -> None:
        self.wakes += 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_advance_releases_exactly_the_waiters_it_reaches() -> None:
    projectors = Projectors()
    water = HighWater(projectors.reached, projectors.wake)
    waits = {p: asyncio.create_task(water.wait_for(p, timeout=30)) for p in (3, 1, 7, 5)}
    await settle()
    assert water.waiting == 4
    assert projectors.wakes == 4  # each waiter asks the tail loop to step now

    projectors.position = 4
    await water.advanced()
    await settle()
    assert {p for p, t in waits.items() if t.done()} == {1, 3}
    assert water.waiting == 2

    await water.advanced()  # no progress: nobody else released
    await settle()
    assert {p for p, t in waits.items() if t.done()} == {1, 3}

    projectors.position = 7
    await water.advanced()
    assert all(await asyncio.gather(*waits.values()))
    assert water.waiting == 0


async def test_a_position_already_reached_does_not_wait() -> None:
    projectors = Projectors()
    projectors.position = 9
    water = HighWater(projectors.reached, projectors.wake)
    assert await water.wait_for(9, timeout=0)
    assert projectors.wakes == 0 and water.waiting == 0


async def test_a_waiter_that_times_out_says_so_and_the_others_still_wait() -> None:
    projectors = Projectors()
    water = HighWater(projectors.reached, projectors.wake)
    patient = asyncio.create_task(water.wait_for(2, timeout=30))
    assert not await water.wait_for(2, timeout=0.01)
    assert water.waiting == 1 and not patient.done()

    projectors.position = 2
    await water.advanced()
    assert await patient
    assert water.waiting == 0
