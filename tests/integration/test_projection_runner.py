"""The projection runner on real SQLite files: checkpoints commit with their rows, commits
in this process wake it at once, other processes' commits are polled, two runners never
double-apply, and one failing projector holds back only itself."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from api.bootstrap import Services
from api.database import create_sync_engine
from api.settings import Settings
from domain import commands as c
from domain import write_tables as w
from domain.bus import CommandBus
from domain.events import Event
from projections import read_tables as r
from projections.base import OrderChange, Projector, StoredEvent
from projections.engine.publication import Publish
from projections.engine.read_side import ReadSide as ProjectionRunner
from projections.registry import PROJECTORS
from tests.conftest import fresh_settings
from tests.integration.integration_support import (
    READ_TABLES,
    STAFF,
    ShopModel,
    assert_snapshots_equal,
    check_invariants,
    checkpoints,
    fresh_read_db,
    rebuild_snapshot,
    run_shopper,
    snapshot,
)
from tests.reliability.support import RawEvent, append_raw_events, database_of


@dataclasses.dataclass
class Rig:
    """The write side and engines of one "process", with runners wired by the test."""

    settings: Settings
    write_engine: Engine
    log_engine: Engine
    read_engine: Engine
    bus: CommandBus

    @classmethod
    def create(cls, settings: Settings, notify: Sequence[ProjectionRunner] = ()) -> Rig:
        write = create_sync_engine(settings.write_database_url, "write")

        def on_commit(position: int) -> None:
            for runner in notify:
                runner.notify(position)

        return cls(
            settings,
            write,
            create_sync_engine(settings.write_database_url, "log"),
            create_sync_engine(settings.read_database_url, "projector"),
            CommandBus(write, on_commit=on_commit),
        )

    def runner(
        self,
        projectors: dict[str, Projector] | None = None,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        publish: Publish | None = None,
    ) -> ProjectionRunner:
        return ProjectionRunner(
            self.log_engine,
            self.read_engine,
            projectors or PROJECTORS,
            batch_size=batch_size,
            poll_interval=poll_interval,
            publish=publish,
        )

    def close(self) -> None:
        self.bus.close()
        for engine in (self.write_engine, self.log_engine, self.read_engine):
            engine.dispose()


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    made = Rig.create(settings)
    try:
        yield made
    finally:
        made.close()


async def _shop(bus: CommandBus, commands: int, seed: int = 5) -> int:
    return await run_shopper(bus, ShopModel(), random.Random(seed), commands)


# -- checkpoints and rows commit together ----------------------------------------------------
async def test_a_step_commits_rows_and_checkpoint_together(
    rig: Rig, template_dir: Path, tmp_path: Path
) -> None:
    head = await _shop(rig.bus, 120)
    runner = rig.runner(batch_size=25)
    try:
        await runner.load_checkpoints()
        assert checkpoints(rig.read_engine) == dict.fromkeys(PROJECTORS, 0)
        await runner.step()
        # Every projector took the first 25 events: the stored checkpoints say so, and the
        # rows are exactly what those 25 events (and no others) produce.
        assert checkpoints(rig.read_engine) == dict.fromkeys(PROJECTORS, 25)
        assert runner.positions == dict.fromkeys(PROJECTORS, 25)
        partial = snapshot(rig.read_engine)
        first_25 = await _first_events_snapshot(rig, template_dir, tmp_path / "first25", 25)
        assert_snapshots_equal(partial, first_25)

        await runner.catch_up(timeout=30)
        assert checkpoints(rig.read_engine) == dict.fromkeys(PROJECTORS, head)
        before = snapshot(rig.read_engine)
        for name in PROJECTORS:
            await runner.rebuild([name])  # built in a shadow, swapped in at the head
            assert checkpoints(rig.read_engine)[name] == head
            assert_snapshots_equal(snapshot(rig.read_engine), before)
        assert not runner.errors
    finally:
        runner.close()


async def _first_events_snapshot(
    rig: Rig, template_dir: Path, target: Path, count: int
) -> dict[str, list[dict[str, object]]]:
    """The read models of the first ``count`` events alone, built one event at a time in a
    fresh database."""
    engine = create_sync_engine(fresh_read_db(template_dir, target), "projector")
    runner = ProjectionRunner(rig.log_engine, engine, PROJECTORS, batch_size=1)
    try:
        await runner.load_checkpoints()
        for _ in range(count):
            await runner.step()
        assert runner.positions == dict.fromkeys(PROJECTORS, count)
        return snapshot(engine)
    finally:
        runner.close()
        engine.dispose()


@dataclasses.dataclass
class CrashAfterApply:
    """Applies the real projector's rows, then the database fails before the transaction
    commits (an OperationalError: not the event's fault, so nothing is parked)."""

    inner: Projector
    crash: bool = True

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def tables(self) -> tuple[sa.Table, ...]:
        return self.inner.tables

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        changes = self.inner.apply(conn, events)
        if self.crash:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("crashed after writing rows"))
        return changes


async def test_a_crash_mid_batch_leaves_neither_rows_nor_checkpoint(rig: Rig) -> None:
    head = await _shop(rig.bus, 60)
    crashing = CrashAfterApply(PROJECTORS["catalog"])
    runner = rig.runner({**PROJECTORS, "catalog": crashing})
    try:
        await runner.load_checkpoints()
        await runner.step()
        assert checkpoints(rig.read_engine)["catalog"] == 0
        assert snapshot(rig.read_engine, [r.catalog_products])["catalog_products"] == []
        assert "crashed after writing rows" in runner.errors["catalog"]
        # The projectors after it in the same step went on (on a fresh connection).
        moved = checkpoints(rig.read_engine)
        assert all(moved[name] > 0 for name in PROJECTORS if name != "catalog"), moved
        crashing.crash = False
        await runner.catch_up(timeout=30)
        assert checkpoints(rig.read_engine) == dict.fromkeys(PROJECTORS, head)
        assert not runner.errors
        check_invariants(rig.write_engine, rig.read_engine)
    finally:
        runner.close()


# -- waking: notify at once, poll for other processes ----------------------------------------
async def until_idle(runner: ProjectionRunner, timeout: float = 10.0) -> None:
    """Wait (bounded) until the runner's loop has found nothing to do and sleeps."""
    deadline = time.monotonic() + timeout
    while not runner.idle:
        assert time.monotonic() < deadline, "the runner never went idle"
        await asyncio.sleep(0.005)


async def test_notify_wakes_the_runner_without_waiting_for_the_poll(
    template_dir: Path, tmp_path: Path
) -> None:
    settings = fresh_settings(template_dir, tmp_path / "db", projection_poll_interval=30)
    services = Services.create(settings)
    await services.start()
    try:
        for n in range(3):
            # The loop has found nothing to do and sleeps for 30 s.
            await until_idle(services.runner)
            start = time.monotonic()
            result = await services.bus.execute(c.AddProduct(STAFF, f"FAST-{n}", "Fast", 100, 1))
            assert result.position is not None
            # Watch the position without calling wait_for (which would wake the loop too).
            while services.runner.position < result.position:
                assert time.monotonic() - start < 10.0, "the runner waited for its poll"
                await asyncio.sleep(0.005)
            assert await services.runner.wait_for(result.position, 1.0)
    finally:
        await services.close()


async def test_events_from_another_process_are_polled(services: Services, rig: Rig) -> None:
    """``rig.bus`` is another process's bus on the same database: nobody notifies the
    runner of ``services``; its poll (0.2 s in these settings) must find the events."""
    poll = services.settings.projection_poll_interval
    await until_idle(services.runner)
    result = await rig.bus.execute(c.AddProduct(STAFF, "ELSEWHERE-1", "Remote", 100, 1))
    assert result.position is not None
    start = time.monotonic()
    while services.runner.position < result.position:
        assert time.monotonic() - start < poll + 10.0, "the poll did not pick up the event"
        await asyncio.sleep(0.01)
    async with services.read_engine.connect() as conn:
        sku = await conn.scalar(sa.select(r.catalog_products.c.sku))
    assert sku == "ELSEWHERE-1"


async def test_a_failed_publish_is_reported_once_and_later_changes_still_go_out(
    rig: Rig,
) -> None:
    """Changes are published from the projector thread as soon as the order detail screen
    commits, chained in commit order; one publish failing must fail its own step only."""
    published: list[tuple[str, int]] = []
    failures = 0

    async def publish(changes: Sequence[OrderChange]) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise RuntimeError("subscriber bus down")
        published.extend((change.order_id, change.version) for change in changes)

    runner = rig.runner(batch_size=5, poll_interval=0.02, publish=publish)
    await runner.load_checkpoints()
    await _shop(rig.bus, 60)
    head = await runner.head_position()
    with pytest.raises(RuntimeError, match="subscriber bus down"):
        while runner.position < head:
            await runner.step()
    # The failed step committed its rows; the runner finds its checkpoints moved, reloads
    # them and goes on. Every later change is published, once, in commit order.
    steps = 0
    while runner.position < head:
        steps += await runner.step()
        assert steps < 1000
    await runner.step()
    assert failures == 1
    assert published, "nothing published after the failure"
    assert len(published) == len(set(published))
    versions: dict[str, int] = {}
    for order_id, version in published:
        assert version > versions.get(order_id, 0), (order_id, version)
        versions[order_id] = version
    runner.close()


# -- two runners on the same databases -------------------------------------------------------
async def until_delivered(runner: ProjectionRunner, position: int, timeout: float = 20.0) -> None:
    """Wait (bounded) until the runner has published the order changes up to
    ``position`` to its subscribers (its own commits, or the other runner's read back)."""
    deadline = time.monotonic() + timeout
    while runner.delivered < position:
        assert time.monotonic() < deadline, (
            f"changes delivered up to {runner.delivered}, not {position}"
        )
        await asyncio.sleep(0.005)


async def test_two_runners_never_double_apply(
    settings: Settings, template_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two "processes", each with its own bus, engines and runner, on the same databases:
    each writes and wakes its own runner, and both runners project the whole log."""
    one_runners: list[ProjectionRunner] = []
    two_runners: list[ProjectionRunner] = []
    one = Rig.create(settings, one_runners)
    two = Rig.create(settings, two_runners)
    published: dict[str, list[tuple[str, int]]] = {"one": [], "two": []}

    def publisher(name: str) -> Callable[[Sequence[OrderChange]], Awaitable[None]]:
        async def publish(changes: Sequence[OrderChange]) -> None:
            published[name].extend((change.order_id, change.version) for change in changes)

        return publish

    first = one.runner(batch_size=7, poll_interval=0.02, publish=publisher("one"))
    second = two.runner(batch_size=11, poll_interval=0.02, publish=publisher("two"))
    one_runners.append(first)
    two_runners.append(second)
    try:
        await first.start()
        await second.start()
        # Two shoppers with their own customers and products, writing at the same time.
        await asyncio.gather(
            run_shopper(one.bus, ShopModel(), random.Random(9), 150),
            run_shopper(two.bus, ShopModel(), random.Random(10), 150),
        )
        head = await first.head_position()
        # Stopped only once each runner has applied *and delivered* everything: reaching
        # the head (``wait_for``) is not delivery. A runner that loses a claim reloads the
        # checkpoints (its positions jump to the other's) and delivers the other's order
        # changes at its next loop pass (``follow``); stopping it in between cancels that
        # delivery, which is what failed this test on a loaded machine.
        for runner in (first, second):
            assert await runner.wait_for(head, 20)
            await until_delivered(runner, head)
        await first.stop()
        await second.stop()
        assert checkpoints(one.read_engine) == dict.fromkeys(PROJECTORS, head)
        check_invariants(one.write_engine, one.read_engine)
        rebuilt = await rebuild_snapshot(template_dir, tmp_path / "rebuild", one.log_engine)
        assert_snapshots_equal(snapshot(one.read_engine), rebuilt)
        # Every order event reaches each process's subscribers once: published by the
        # runner that committed it to the order detail screen, read back from the changes
        # table by the other.
        with one.log_engine.connect() as conn:
            order_events = [
                (stream.removeprefix("order-"), version)
                for stream, version in conn.execute(
                    sa.select(w.events.c.stream_id, w.events.c.stream_version).where(
                        w.events.c.stream_id.startswith("order-")
                    )
                )
            ]
        assert sorted(published["one"]) == sorted(order_events)
        assert sorted(published["two"]) == sorted(order_events)
        # Losing a race to the other runner is not a failure of the projector.
        failures = [rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR"]
        assert failures == []
        assert {s.state for s in first.status()} == {"stopped"}, first.errors
        assert {s.state for s in second.status()} == {"stopped"}, second.errors
    finally:
        for runner in (first, second):
            await runner.stop()
            runner.close()
        one.close()
        two.close()


async def test_rebuild_while_the_runner_is_live(
    services: Services, template_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators rebuild one projection at a time while commands keep coming."""

    async def rebuild_each() -> None:
        for name in PROJECTORS:
            await asyncio.sleep(0.03)
            await services.runner.rebuild([name])

    await asyncio.gather(
        run_shopper(services.bus, ShopModel(), random.Random(12), 200), rebuild_each()
    )
    head = await services.runner.head_position()
    assert await services.runner.wait_for(head, 20)
    await services.runner.stop()
    assert not services.runner.errors
    assert [rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR"] == []
    assert checkpoints(services.projector_engine) == dict.fromkeys(PROJECTORS, head)
    check_invariants(services.write_engine, services.projector_engine)
    rebuilt = await rebuild_snapshot(template_dir, tmp_path / "rebuild", services.log_engine)
    assert_snapshots_equal(snapshot(services.projector_engine), rebuilt)


# -- a failing projector holds back only itself ----------------------------------------------
@dataclasses.dataclass
class FailsOnPayment:
    name: str = "broken"
    tables: tuple[sa.Table, ...] = ()
    failing: bool = True
    seen: list[int] = dataclasses.field(default_factory=list)

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        if self.failing and any(ev.type == "OrderPaid" for ev in events):
            raise ValueError("cannot handle OrderPaid")
        self.seen.extend(ev.position for ev in events)
        return ()


async def test_a_poison_event_is_parked_and_holds_back_only_its_stream(rig: Rig) -> None:
    broken = FailsOnPayment()
    runner = rig.runner({**PROJECTORS, "broken": broken}, batch_size=4, poll_interval=0.05)
    alice = c.Actor(
        (await rig.bus.execute(c.RegisterCustomer(None, "a@x.io", "A"))).entity_id, "customer"
    )
    await rig.bus.execute(c.AddProduct(STAFF, "P-1", "Pen", 250, 10))
    placed = await rig.bus.execute(c.PlaceOrder(alice, (c.LineRequest("P-1", 1),)))
    paid = await rig.bus.execute(c.PayOrder(alice, placed.entity_id))
    shipped = await rig.bus.execute(c.ShipOrder(STAFF, placed.entity_id, "DHL", "T-1"))
    for n in range(6):
        await rig.bus.execute(c.RestockProduct(STAFF, "P-1", n + 1))
    head = await runner.head_position()
    assert paid.position == 4
    assert shipped.position == 5
    try:
        await runner.start()
        assert await runner.wait_for(head, 10), runner.positions
        states = {s.name: s for s in runner.status()}
        # Every projector, the broken one too, went on to the head...
        assert {name: s.position for name, s in states.items()} == {
            **dict.fromkeys(PROJECTORS, head),
            "broken": head,
        }
        assert checkpoints(rig.read_engine) == {**dict.fromkeys(PROJECTORS, head), "broken": head}
        # ...with the poison event parked, and the later event of its order behind it.
        assert states["broken"].dead_letters == 2
        letters = await runner.list_dead_letters()
        assert [(d.name, d.position, d.event_type) for d in letters] == [
            ("broken", 4, "OrderPaid"),
            ("broken", 5, "OrderShipped"),
        ]
        assert "cannot handle OrderPaid" in letters[0].error
        assert "waiting behind" in letters[1].error
        assert 6 in broken.seen  # other streams kept flowing past the parked one
        assert 5 not in broken.seen

        broken.failing = False  # fixed: retry applies the parked events, in order
        assert await runner.retry("broken") == {"broken": (2, 0)}
        assert broken.seen[-2:] == [4, 5]
        assert sorted(broken.seen) == list(range(1, head + 1))
        assert await runner.list_dead_letters() == []
        assert runner.dead_letters["broken"] == 0
    finally:
        await runner.stop()
        runner.close()


def test_read_tables_cover_every_projector() -> None:
    owned = {t.name for p in PROJECTORS.values() for t in p.tables}
    assert owned == {t.name for t in READ_TABLES}


# -- the order documents a step committed, kept for mutation payloads ----------------------
async def test_committed_order_is_what_the_order_detail_row_holds(rig: Rig) -> None:
    runner = rig.runner(poll_interval=0.05)
    alice = c.Actor(
        (await rig.bus.execute(c.RegisterCustomer(None, "a@x.io", "A"))).entity_id, "customer"
    )
    await rig.bus.execute(c.AddProduct(STAFF, "P-1", "Pen", 250, 10))
    placed = await rig.bus.execute(c.PlaceOrder(alice, (c.LineRequest("P-1", 2),)))
    assert placed.position is not None
    try:
        await runner.start()
        assert await runner.wait_for(placed.position, 10)

        def stored(order_id: str) -> object:
            with rig.read_engine.connect() as conn:
                doc = conn.scalar(
                    sa.select(r.order_detail.c.doc).where(r.order_detail.c.order_id == order_id)
                )
            assert isinstance(doc, str)
            return orjson.loads(doc)

        assert runner.committed_order(placed.entity_id, placed.position) == stored(placed.entity_id)
        paid = await rig.bus.execute(c.PayOrder(alice, placed.entity_id))
        assert paid.position is not None
        # Not yet applied: nothing is answered for a position the runner has not reached.
        if runner.position < paid.position:
            assert runner.committed_order(placed.entity_id, paid.position) is None
        assert await runner.wait_for(paid.position, 10)
        after_pay = runner.committed_order(placed.entity_id, paid.position)
        assert after_pay == stored(placed.entity_id)
        assert after_pay is not None and after_pay["status"] == "PAID"
        # A rebuild replaces rows: what was kept is forgotten, reads go to the table.
        await runner.rebuild()
        assert runner.committed_order(placed.entity_id, paid.position) is None
    finally:
        await runner.stop()
        runner.close()


async def test_events_before_an_unreadable_one_of_their_stream_still_apply(rig: Rig) -> None:
    """An unreadable event parks itself and what comes after it in its stream; the events
    of that stream before it, in the same batch, are applied as usual."""
    runner = rig.runner(batch_size=500)
    alice = c.Actor(
        (await rig.bus.execute(c.RegisterCustomer(None, "a@x.io", "A"))).entity_id, "customer"
    )
    await rig.bus.execute(c.AddProduct(STAFF, "P-1", "Pen", 250, 10))
    placed = await rig.bus.execute(c.PlaceOrder(alice, (c.LineRequest("P-1", 1),)))
    await rig.bus.execute(c.PayOrder(alice, placed.entity_id))
    stream = f"order-{placed.entity_id}"
    broken = {"order_id": placed.entity_id, "customer_id": alice.id, "carrier": "DHL"}
    poison_at, behind_at = append_raw_events(
        database_of(rig.write_engine.url.render_as_string(hide_password=False)),
        [
            RawEvent(stream, 3, "OrderShipped", broken),  # no tracking_number: unreadable
            RawEvent(stream, 4, "OrderDelivered", {"order_id": placed.entity_id}),
        ],
    )
    try:
        await runner.load_checkpoints()
        await runner.step()  # everything in one batch
        assert runner.position == behind_at
        with rig.read_engine.connect() as conn:
            doc = conn.scalar(
                sa.select(r.order_detail.c.doc).where(r.order_detail.c.order_id == placed.entity_id)
            )
            parked = conn.execute(
                sa.select(r.projection_dead_letters.c.name, r.projection_dead_letters.c.position)
            ).all()
        assert isinstance(doc, str) and orjson.loads(doc)["status"] == "PAID"
        order_screens = {"order_history", "order_detail", "fulfillment_queue"}
        assert {(n, p) for n, p in parked if n in order_screens} == {
            (n, p) for n in order_screens for p in (poison_at, behind_at)
        }
    finally:
        runner.close()
