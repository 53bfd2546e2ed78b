"""Unit tests of projections.engine.high_water: the head this process knows, how long the
projectors have been behind it (``lag_ms``), and waiting for a position (read your
writes). The projectors' position is a plain variable the test moves."""

from __future__ import annotations

import asyncio
import time

from projections.engine.high_water import HighWater


class Projectors:
    def __init__(self) -> None:
        self.reached = 0
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def make() -> tuple[HighWater, Projectors]:
    projectors = Projectors()
    return HighWater(lambda: projectors.reached, projectors.wake), projectors


def later_than(instant: float) -> float:
    """Wait (bounded) until the monotonic clock has moved past ``instant``."""
    deadline = time.monotonic() + 5
    while time.monotonic() <= instant:
        assert time.monotonic() < deadline
    return time.monotonic()


def test_the_head_only_moves_forward() -> None:
    water, _ = make()
    water.observe(5)
    water.observe(3)
    water.observe(5)
    assert water.head == 5
    water.observe(8)
    assert water.head == 8


def test_no_lag_at_or_beyond_what_is_known() -> None:
    water, _ = make()
    assert water.lag_ms(0) == 0.0
    water.observe(5)
    assert water.lag_ms(5) == 0.0
    assert water.lag_ms(6) == 0.0


def test_lag_counts_from_when_the_first_event_after_the_position_was_known() -> None:
    water, projectors = make()
    before = time.monotonic()
    water.observe(5)
    later_than(time.monotonic())  # strictly after 5 was first known
    water.observe(9)  # known later: it does not make position 4 look more recent
    later_than(time.monotonic())  # strictly after 9 was first known
    # Position 5 is behind only what was first known at 9's observation, strictly later
    # than 5's: asked first, its lag is still the smaller.
    lag_5 = water.lag_ms(5)
    lag_4 = water.lag_ms(4)
    since_before = (time.monotonic() - before) * 1000
    assert 0 < lag_5 < lag_4 <= since_before
    assert water.lag_ms(9) == 0.0
    projectors.reached = 9
    water.observe(9)
    assert water.lag_ms(9) == 0.0


def test_repeated_observations_of_the_same_head_keep_its_first_time() -> None:
    water, _ = make()
    water.observe(5)
    lag = water.lag_ms(0)
    later_than(time.monotonic())
    water.observe(5)  # the same head again: still behind since the first time
    assert water.lag_ms(0) > lag


def test_the_history_is_trimmed_to_what_the_projectors_have_not_reached() -> None:
    """Memory stays bounded however long the process runs: the times kept are those still
    needed for the lag of a position at or after what every projector reached."""
    water, projectors = make()
    for position in range(1, 1001):
        water.observe(position)
        projectors.reached = position - 1
    water.observe(1000)
    assert len(water._seen) <= 2
    later_than(time.monotonic())
    assert water.lag_ms(999) > 0.0
    projectors.reached = 1000  # caught up: only the time of the head itself is kept
    water.observe(1000)
    assert len(water._seen) == 1
    assert water.lag_ms(1000) == 0.0


async def test_wait_for_a_position_already_reached_returns_at_once() -> None:
    water, projectors = make()
    projectors.reached = 7
    assert await water.wait_for(7, 0.001)
    assert await water.wait_for(3, 0.001)
    assert projectors.wakes == 0  # nothing to ask of the tail loop


async def test_wait_for_wakes_the_tail_loop_and_ends_when_the_projectors_advance() -> None:
    water, projectors = make()
    waiter = asyncio.create_task(water.wait_for(7, 30))
    deadline = time.monotonic() + 5
    while water.waiting == 0:
        assert time.monotonic() < deadline, "the waiter never started waiting"
        await asyncio.sleep(0.001)
    assert projectors.wakes == 1
    projectors.reached = 6
    await water.advanced()
    await asyncio.sleep(0)
    assert not waiter.done() and water.waiting == 1  # 6 is not 7
    projectors.reached = 7
    await water.advanced()
    assert await asyncio.wait_for(waiter, 5) is True
    assert water.waiting == 0


async def test_wait_for_times_out_false() -> None:
    water, projectors = make()
    projectors.reached = 2
    assert await water.wait_for(3, 0.01) is False
    assert water.waiting == 0


async def test_waiting_counts_every_caller_inside_wait_for() -> None:
    water, projectors = make()
    near = asyncio.create_task(water.wait_for(3, 30))
    far = asyncio.create_task(water.wait_for(9, 30))
    deadline = time.monotonic() + 5
    while water.waiting < 2:
        assert time.monotonic() < deadline, f"{water.waiting} waiting, not 2"
        await asyncio.sleep(0.001)
    projectors.reached = 3
    await water.advanced()
    assert await asyncio.wait_for(near, 5) is True
    assert water.waiting == 1 and not far.done()
    projectors.reached = 9
    await water.advanced()
    assert await asyncio.wait_for(far, 5) is True
    assert water.waiting == 0


def test_lag_is_in_milliseconds() -> None:
    water, _ = make()
    water.observe(5)
    known = time.monotonic()
    later_than(known + 0.05)  # 50 ms on the clock since 5 was known
    lag = water.lag_ms(4)
    assert 50.0 <= lag <= (time.monotonic() - known) * 1000 + 50.0
