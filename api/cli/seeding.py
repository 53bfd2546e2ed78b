"""Seed data through the real command handlers, in group-committed batches."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence

from domain import commands as c
from domain.bus import CommandBus, CommandResult
from domain.model import DomainError

STAFF = c.Actor("staff-seed", "staff")
BATCH = 250
DEMO_EMAIL = "demo@shopfront.example"
DEMO_PRODUCTS = [
    ("MUG-001", "Enamel camping mug", 1250, 40, "Light steel mug with a blue rim."),
    ("TEE-BLK-M", "Black T-shirt (M)", 1999, 25, "Organic cotton, medium."),
    ("TEE-WHT-L", "White T-shirt (L)", 1999, 25, "Organic cotton, large."),
    ("SOCK-WOOL", "Wool hiking socks", 1495, 60, "Merino blend, two pairs."),
    ("BTL-750", "Steel water bottle", 2450, 30, "750 ml, keeps cold for 24 h."),
    ("NOTE-A5", "A5 dotted notebook", 899, 100, "Lay-flat binding, 160 pages."),
    ("PEN-FNT", "Fountain pen", 3900, 12, "Fine nib, converter included."),
    ("BAG-TOTE", "Canvas tote bag", 1500, 50, "Heavy canvas with inner pocket."),
    ("CAP-GRN", "Green cap", 1800, 0, "Sold out: shows how inStock works."),
    ("LAMP-DSK", "Desk lamp", 5900, 8, "Warm LED, dimmable."),
]

Report = Callable[[int], None]


def _check(results: Sequence[CommandResult | DomainError]) -> list[CommandResult]:
    ok = [r for r in results if isinstance(r, CommandResult)]
    errors = [r for r in results if isinstance(r, DomainError)]
    if errors:
        raise RuntimeError(f"seed command refused: {errors[0].code}: {errors[0].message}")
    return ok


async def _batched(
    bus: CommandBus, commands: Sequence[c.Command], report: Report
) -> list[CommandResult]:
    done: list[CommandResult] = []
    for start in range(0, len(commands), BATCH):
        chunk = commands[start : start + BATCH]
        done += _check(await bus.execute_many(chunk))
        report(len(chunk))
    return done


def _lifecycle(rng: random.Random, owner: c.Actor, order_id: str) -> list[c.Command]:
    """Follow-up commands that move a new order along a plausible life."""
    roll = rng.random()
    steps: list[c.Command] = []
    if roll < 0.08:
        return [c.CancelOrder(owner, order_id, "Changed my mind")]
    if roll < 0.25:
        return steps  # still waiting for payment
    steps.append(c.PayOrder(owner, order_id))
    if roll < 0.30:
        return [*steps, c.CancelOrder(STAFF, order_id, "Out of delivery area")]
    if roll < 0.45:
        return steps  # in the fulfillment queue
    steps.append(
        c.ShipOrder(
            STAFF, order_id, rng.choice(["DHL", "UPS", "PostNL"]), f"TRK{rng.randrange(10**9):09d}"
        )
    )
    if roll < 0.60:
        return steps
    return [*steps, c.DeliverOrder(STAFF, order_id)]


async def seed(
    bus: CommandBus,
    *,
    customers: int,
    products: int,
    orders: int,
    report: Report,
    seed_value: int | None = None,
) -> None:
    """Create customers, products and orders (with payments, shipments, cancellations)."""
    rng = random.Random(seed_value)
    tag = uuid.uuid4().hex[:6]
    stock = max(100, orders * 4 // max(products, 1) + 100)
    product_cmds = [
        c.AddProduct(
            STAFF,
            f"SKU-{tag}-{i:05d}",
            f"Product {i} {rng.choice(ADJECTIVES)}",
            rng.randrange(199, 20_000),
            stock,
            f"Seeded product number {i}",
        )
        for i in range(products)
    ]
    await _batched(bus, product_cmds, report)
    customer_cmds = [
        c.RegisterCustomer(None, f"customer{i}-{tag}@example.com", f"Customer {i}")
        for i in range(customers)
    ]
    actors = [c.Actor(r.entity_id, "customer") for r in await _batched(bus, customer_cmds, report)]
    skus = [cmd.sku for cmd in product_cmds]
    if not orders or not actors or not skus:
        return
    for start in range(0, orders, BATCH):
        owners = [rng.choice(actors) for _ in range(min(BATCH, orders - start))]
        places = [
            c.PlaceOrder(
                owner,
                tuple(
                    c.LineRequest(sku, rng.randint(1, 3))
                    for sku in rng.sample(skus, k=min(len(skus), rng.randint(1, 3)))
                ),
            )
            for owner in owners
        ]
        placed = _check(await bus.execute_many(places))
        follow = [
            cmd
            for owner, result in zip(owners, placed, strict=True)
            for cmd in _lifecycle(rng, owner, result.entity_id)
        ]
        for index in range(0, len(follow), BATCH):
            _check(await bus.execute_many(follow[index : index + BATCH]))
        report(len(places))


ADJECTIVES = ["mug", "lamp", "scarf", "kettle", "chair", "poster", "candle", "bowl"]


async def seed_demo(bus: CommandBus) -> str:
    """The demo shop: products, the demo customer and a few orders. Returns the customer id."""
    for sku, name, price, stock, description in DEMO_PRODUCTS:
        await bus.execute(c.AddProduct(STAFF, sku, name, price, stock, description))
    demo = await bus.execute(c.RegisterCustomer(None, DEMO_EMAIL, "Demo Customer"))
    me = c.Actor(demo.entity_id, "customer")
    first = await bus.execute(
        c.PlaceOrder(me, (c.LineRequest("MUG-001", 2), c.LineRequest("NOTE-A5", 1)))
    )
    for command in (
        c.PayOrder(me, first.entity_id),
        c.ShipOrder(STAFF, first.entity_id, "DHL", "JD014600006245"),
    ):
        await bus.execute(command)
    second = await bus.execute(c.PlaceOrder(me, (c.LineRequest("BTL-750", 1),)))
    await bus.execute(c.PayOrder(me, second.entity_id))
    await bus.execute(c.PlaceOrder(me, (c.LineRequest("SOCK-WOOL", 2),)))
    return demo.entity_id
