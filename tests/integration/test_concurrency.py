"""Commands racing each other, in one process and across two (two command buses, each with
its own engine, on the same SQLite file): no false success, no oversell, no half-applied
group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from api.bootstrap import Services
from api.database import create_sync_engine
from domain import commands as c
from domain import write_tables as w
from domain.bus import CommandBus, CommandResult
from domain.handlers import HANDLERS
from domain.model import DomainError
from projections import read_tables as r
from tests.integration.integration_support import STAFF, check_invariants

Outcome = CommandResult | BaseException


@pytest.fixture
async def other_bus(services: Services) -> AsyncIterator[CommandBus]:
    """A command bus as another process has it: its own engine, nobody to notify."""
    engine = create_sync_engine(services.settings.write_database_url, "write")
    bus = CommandBus(engine)
    try:
        yield bus
    finally:
        bus.close()
        engine.dispose()


async def _customers(bus: CommandBus, count: int, tag: str) -> list[c.Actor]:
    results = await bus.execute_many(
        [c.RegisterCustomer(None, f"{tag}{i}@example.com", f"Customer {i}") for i in range(count)]
    )
    return [c.Actor(_ok(result).entity_id, "customer") for result in results]


def _ok(outcome: object) -> CommandResult:
    assert isinstance(outcome, CommandResult), outcome
    return outcome


async def _placed_orders(
    bus: CommandBus, count: int, *, paid: bool = False
) -> list[tuple[c.Actor, str]]:
    _ok(await bus.execute(c.AddProduct(STAFF, "RACE-1", "Racing mug", 1500, 10_000)))
    owners = await _customers(bus, count, "racer")
    placed = await bus.execute_many(
        [c.PlaceOrder(owner, (c.LineRequest("RACE-1", 2),)) for owner in owners]
    )
    orders = [(owner, _ok(result).entity_id) for owner, result in zip(owners, placed, strict=True)]
    if paid:
        for result in await bus.execute_many([c.PayOrder(o, oid) for o, oid in orders]):
            _ok(result)
    return orders


async def _race(
    rng: random.Random, one: CommandBus, two: CommandBus, a: c.Command, b: c.Command
) -> tuple[Outcome, Outcome]:
    """Run ``a`` and ``b`` at once, on the two buses; which command is sent first, and on
    which bus, is drawn from ``rng``. Returns their outcomes as (a, b)."""
    if rng.random() < 0.5:
        one, two = two, one
    if rng.random() < 0.5:
        got_b, got_a = await asyncio.gather(one.execute(b), two.execute(a), return_exceptions=True)
    else:
        got_a, got_b = await asyncio.gather(one.execute(a), two.execute(b), return_exceptions=True)
    return got_a, got_b


def _order_events(services: Services, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    import orjson

    with services.log_engine.connect() as conn:
        rows = conn.execute(
            sa.select(w.events.c.type, w.events.c.payload)
            .where(w.events.c.stream_id == f"order-{order_id}")
            .order_by(w.events.c.stream_version)
        )
        return [(row.type, orjson.loads(row.payload)) for row in rows]


def _invalid_state(outcome: Outcome) -> bool:
    return isinstance(outcome, DomainError) and outcome.code == "INVALID_STATE"


async def _settle(services: Services) -> None:
    head = await services.runner.head_position()
    assert await services.runner.wait_for(head, 10)
    assert not services.runner.errors, services.runner.errors
    await asyncio.to_thread(check_invariants, services.write_engine, services.projector_engine)


def _buses(
    services: Services, other_bus: CommandBus, across: bool
) -> tuple[CommandBus, CommandBus]:
    return (services.bus, other_bus if across else services.bus)


# -- optimistic concurrency: exclusive transitions -------------------------------------------
@pytest.mark.parametrize("across", [True, False], ids=["two-processes", "one-process"])
async def test_racing_payments_exactly_one_wins(
    services: Services, other_bus: CommandBus, across: bool
) -> None:
    one, two = _buses(services, other_bus, across)
    orders = await _placed_orders(services.bus, 20)
    rng = random.Random(3)
    results = await asyncio.gather(
        *(
            _race(rng, one, two, c.PayOrder(owner, oid), c.PayOrder(owner, oid))
            for owner, oid in orders
        )
    )
    for (_, oid), outcomes in zip(orders, results, strict=True):
        wins = [o for o in outcomes if isinstance(o, CommandResult)]
        assert len(wins) == 1, outcomes
        assert sum(map(_invalid_state, outcomes)) == 1, outcomes
        assert [t for t, _ in _order_events(services, oid)] == ["OrderPlaced", "OrderPaid"]
    await _settle(services)


@pytest.mark.parametrize("across", [True, False], ids=["two-processes", "one-process"])
async def test_ship_racing_cancel_exactly_one_wins(
    services: Services, other_bus: CommandBus, across: bool
) -> None:
    one, two = _buses(services, other_bus, across)
    orders = await _placed_orders(services.bus, 20, paid=True)
    rng = random.Random(7)
    results = await asyncio.gather(
        *(
            _race(
                rng,
                one,
                two,
                c.ShipOrder(STAFF, oid, "DHL", f"T-{oid[:8]}"),
                c.CancelOrder(owner, oid, "too slow"),
            )
            for owner, oid in orders
        )
    )
    winners = set()
    for (_, oid), (shipped, cancelled) in zip(orders, results, strict=True):
        assert isinstance(shipped, CommandResult) != isinstance(cancelled, CommandResult), (
            shipped,
            cancelled,
        )
        loser = cancelled if isinstance(shipped, CommandResult) else shipped
        assert _invalid_state(loser), loser
        kinds = [t for t, _ in _order_events(services, oid)]
        won = "OrderShipped" if isinstance(shipped, CommandResult) else "OrderCancelled"
        winners.add(won)
        assert kinds == ["OrderPlaced", "OrderPaid", won]
    if not across:  # one bus runs them in the drawn order: both kinds of winner occur
        assert winners == {"OrderShipped", "OrderCancelled"}
    await _settle(services)


@pytest.mark.parametrize("across", [True, False], ids=["two-processes", "one-process"])
async def test_pay_racing_cancel_never_falsely_succeeds(
    services: Services, other_bus: CommandBus, across: bool
) -> None:
    """Cancelling is allowed from PLACED and from PAID (API.md), so when payment wins the
    cancel succeeds too, as a refund. What must never happen: a payment that 'succeeds'
    on an order that was already cancelled, or any other history."""
    one, two = _buses(services, other_bus, across)
    orders = await _placed_orders(services.bus, 20)
    rng = random.Random(11)
    results = await asyncio.gather(
        *(
            _race(rng, one, two, c.PayOrder(owner, oid), c.CancelOrder(owner, oid, None))
            for owner, oid in orders
        )
    )
    pay_wins = sum(isinstance(paid, CommandResult) for paid, _ in results)
    if not across:
        assert 0 < pay_wins < len(orders)
    for (_, oid), (paid, cancelled) in zip(orders, results, strict=True):
        assert isinstance(cancelled, CommandResult), cancelled  # from PLACED or from PAID
        history = _order_events(services, oid)
        kinds = [t for t, _ in history]
        if isinstance(paid, CommandResult):
            assert kinds == ["OrderPlaced", "OrderPaid", "OrderCancelled"]
            assert history[-1][1]["previous_status"] == "PAID"
            assert history[-1][1]["refunded_cents"] == history[1][1]["amount_cents"] > 0
        else:
            assert _invalid_state(paid), paid
            assert kinds == ["OrderPlaced", "OrderCancelled"]
            assert history[-1][1]["previous_status"] == "PLACED"
            assert history[-1][1]["refunded_cents"] == 0
    with services.write_engine.connect() as conn:
        statuses = set(conn.scalars(sa.select(w.orders.c.status)))
        reserved = conn.scalar(sa.select(sa.func.sum(w.products.c.stock_reserved)))
    assert statuses == {"CANCELLED"}
    assert reserved == 0
    await _settle(services)


# -- no oversell -----------------------------------------------------------------------------
async def _sample_stock(services: Services, stop: asyncio.Event) -> tuple[int, int]:
    """Lowest available stock seen in the write model and in the catalog while racing."""
    lowest_write = lowest_read = 10**9
    while not stop.is_set():
        with services.write_engine.connect() as conn:
            row = conn.execute(
                sa.select(w.products.c.stock_on_hand, w.products.c.stock_reserved).where(
                    w.products.c.sku == "LAST-10"
                )
            ).one()
        lowest_write = min(lowest_write, row.stock_on_hand - row.stock_reserved, row.stock_reserved)
        async with services.read_engine.connect() as aconn:
            available = await aconn.scalar(
                sa.select(r.catalog_products.c.stock_available).where(
                    r.catalog_products.c.sku == "LAST-10"
                )
            )
        if available is not None:
            lowest_read = min(lowest_read, available)
        await asyncio.sleep(0.002)
    return lowest_write, lowest_read


@pytest.mark.parametrize("grouped", [False, True], ids=["execute", "execute_many"])
async def test_fifty_buyers_ten_in_stock(
    services: Services, other_bus: CommandBus, grouped: bool
) -> None:
    _ok(await services.bus.execute(c.AddProduct(STAFF, "LAST-10", "Last ten", 999, 10)))
    buyers = await _customers(services.bus, 50, "buyer")
    await _settle(services)
    commands = [c.PlaceOrder(buyer, (c.LineRequest("LAST-10", 1),)) for buyer in buyers]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_stock(services, stop))
    outcomes: Sequence[Outcome]
    if grouped:
        # Two processes, each group-committing half of the buyers, in chunks.
        chunks = [commands[i : i + 5] for i in range(0, 50, 5)]
        groups = await asyncio.gather(
            *(
                (services.bus if n % 2 else other_bus).execute_many(chunk)
                for n, chunk in enumerate(chunks)
            )
        )
        outcomes = [o for group in groups for o in group]
    else:
        outcomes = await asyncio.gather(
            *(
                (services.bus if n % 2 else other_bus).execute(cmd)
                for n, cmd in enumerate(commands)
            ),
            return_exceptions=True,
        )
    await _settle(services)
    stop.set()
    lowest_write, lowest_read = await sampler

    sold = [o for o in outcomes if isinstance(o, CommandResult)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(sold) == 10
    assert len(refused) == 40
    assert {e.code for e in refused} == {"OUT_OF_STOCK"}
    assert lowest_write >= 0
    assert lowest_read >= 0
    with services.write_engine.connect() as conn:
        row = conn.execute(
            sa.select(w.products.c.stock_on_hand, w.products.c.stock_reserved).where(
                w.products.c.sku == "LAST-10"
            )
        ).one()
        orders = conn.scalar(sa.select(sa.func.count()).select_from(w.orders))
    assert (row.stock_on_hand, row.stock_reserved, orders) == (10, 10, 10)
    async with services.read_engine.connect() as aconn:
        available = await aconn.scalar(
            sa.select(r.catalog_products.c.stock_available).where(
                r.catalog_products.c.sku == "LAST-10"
            )
        )
    assert available == 0


# -- group commit ----------------------------------------------------------------------------
async def test_group_commit_rolls_back_only_the_refused_commands(services: Services) -> None:
    _ok(await services.bus.execute(c.AddProduct(STAFF, "GRP-1", "Group mug", 1000, 3)))
    (alice,) = await _customers(services.bus, 1, "alice")
    head_before = await services.runner.head_position()
    group: list[c.Command] = [
        c.PlaceOrder(alice, (c.LineRequest("GRP-1", 2),)),  # ok: 1 left
        c.PlaceOrder(alice, (c.LineRequest("GRP-1", 2),)),  # OUT_OF_STOCK: sees the first
        c.AddProduct(STAFF, "GRP-2", "Group bowl", 500, 5),  # ok
        c.AddProduct(STAFF, "GRP-2", "Group bowl again", 500, 5),  # SKU_TAKEN: sees the last
        c.RegisterCustomer(None, "bob@example.com", "Bob"),  # ok
        c.RegisterCustomer(None, "BOB@example.com", "Bob twice"),  # EMAIL_TAKEN
        c.PlaceOrder(alice, (c.LineRequest("GRP-2", 1), c.LineRequest("NOPE", 1))),  # UNKNOWN
        c.RestockProduct(STAFF, "GRP-1", 5),  # ok
        c.PlaceOrder(alice, (c.LineRequest("GRP-1", 4),)),  # ok after the restock
    ]
    outcomes = await services.bus.execute_many(group)
    codes = [o.code if isinstance(o, DomainError) else "ok" for o in outcomes]
    assert codes == [
        "ok",
        "OUT_OF_STOCK",
        "ok",
        "SKU_TAKEN",
        "ok",
        "EMAIL_TAKEN",
        "UNKNOWN_SKU",
        "ok",
        "ok",
    ]
    accepted = [o for o in outcomes if isinstance(o, CommandResult)]
    # One event per accepted command, at consecutive positions right after the old head.
    assert [o.position for o in accepted] == list(range(head_before + 1, head_before + 6))
    with services.write_engine.connect() as conn:
        events = conn.execute(
            sa.select(w.events.c.position, w.events.c.type, w.events.c.command_id)
            .where(w.events.c.position > head_before)
            .order_by(w.events.c.position)
        ).all()
        products = dict(
            conn.execute(sa.select(w.products.c.sku, w.products.c.stock_reserved)).all()
        )
        emails = set(conn.scalars(sa.select(w.customers.c.email)))
        orders = conn.scalar(sa.select(sa.func.count()).select_from(w.orders))
    assert [e.type for e in events] == [
        "OrderPlaced",
        "ProductAdded",
        "CustomerRegistered",
        "ProductRestocked",
        "OrderPlaced",
    ]
    assert len({e.command_id for e in events}) == 5
    assert products == {"GRP-1": 6, "GRP-2": 0}
    assert emails == {"alice0@example.com", "bob@example.com"}
    assert orders == 2
    await _settle(services)


async def test_concurrent_commands_share_commits_and_fail_alone(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands that wait for the writer together go in one transaction (fewer commits
    than commands), each with exactly its own outcome: refused ones roll back alone, and
    so does one whose handler fails unexpectedly."""

    @dataclasses.dataclass(frozen=True)
    class Explode(c.Command):
        pass

    def explode(uow: Any, command: Any) -> str:
        uow.conn.execute(w.products.update().values(stock_on_hand=w.products.c.stock_on_hand + 99))
        raise RuntimeError("a bug in a handler")  # after a write that must roll back

    monkeypatch.setitem(HANDLERS, Explode, explode)
    _ok(await services.bus.execute(c.AddProduct(STAFF, "CON-1", "Concurrent mug", 1000, 30)))
    buyers = await _customers(services.bus, 40, "con")
    commits = 0

    def count(conn: Any) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(services.write_engine, "commit", count)
    try:
        commands: list[c.Command] = [
            c.PlaceOrder(buyer, (c.LineRequest("CON-1", 1),)) for buyer in buyers
        ]
        commands.insert(20, Explode(None))
        outcomes = await asyncio.gather(
            *(services.bus.execute(command) for command in commands), return_exceptions=True
        )
    finally:
        sa.event.remove(services.write_engine, "commit", count)
    assert commits < len(commands), commits  # grouped
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert [str(o) for o in failed] == ["a bug in a handler"]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    placed = [o for o in outcomes if isinstance(o, CommandResult)]
    assert len(placed) == 30 and {e.code for e in refused} == {"OUT_OF_STOCK"}
    assert len(refused) == 10
    positions = sorted(o.position for o in placed if o.position is not None)
    assert positions == list(range(positions[0], positions[0] + 30))
    with services.write_engine.connect() as conn:
        stock = conn.execute(
            sa.select(w.products.c.stock_on_hand, w.products.c.stock_reserved).where(
                w.products.c.sku == "CON-1"
            )
        ).one()
    assert tuple(stock) == (30, 30)  # the failed command's update was rolled back
    await _settle(services)


async def test_orders_of_the_same_products_in_crosswise_line_order_all_commit(
    services: Services, other_bus: CommandBus
) -> None:
    """Orders of products A and B, half listing A first and half B first, at once from
    two buses: each reserves both rows, so on PostgreSQL (several writer threads per bus)
    they would wait for each other's rows crosswise unless every order locks them in one
    order. All commit; none fails with a deadlock."""
    bus = services.bus
    await bus.execute(c.AddProduct(STAFF, "CROSS-A", "A", 100, 10_000))
    await bus.execute(c.AddProduct(STAFF, "CROSS-B", "B", 100, 10_000))
    buyers = [
        c.Actor(
            (await bus.execute(c.RegisterCustomer(None, f"x{n}@cross.io", "X"))).entity_id,
            "customer",
        )
        for n in range(8)
    ]
    orders = [
        c.PlaceOrder(
            buyers[n % len(buyers)],
            tuple(c.LineRequest(sku, 1) for sku in (["CROSS-A", "CROSS-B"][:: 1 - 2 * (n % 2)])),
        )
        for n in range(80)
    ]
    results = await asyncio.gather(
        *((bus if n % 2 else other_bus).execute(order) for n, order in enumerate(orders)),
        return_exceptions=True,
    )
    failures = [r for r in results if not isinstance(r, CommandResult)]
    assert failures == [], failures[:3]
    with services.write_engine.connect() as conn:
        reserved = conn.execute(sa.select(w.products.c.sku, w.products.c.stock_reserved))
        assert dict(reserved.all()) == {"CROSS-A": 80, "CROSS-B": 80}
