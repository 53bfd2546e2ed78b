"""The write model as the command handlers leave it, on a real write database (SQLite,
or PostgreSQL with --db=postgresql) through the real command bus: the rows of a product's
and an order's whole life (placed, paid, shipped, delivered; cancelled and refunded), and
an idempotent replay answered from them. The end-to-end tests read these through the API;
here each column is checked where it is written."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.database import create_sync_engine
from api.settings import Settings
from domain import commands as c
from domain import write_tables as w
from domain.bus import CommandBus, CommandResult
from domain.model import DomainError

STAFF = c.Actor("staff-wm", "staff")


def _row(engine: Engine, table: sa.Table, **where: object) -> sa.Row[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table).where(*(table.c[name] == value for name, value in where.items()))
        ).all()
    assert len(rows) == 1, (table.name, where, rows)
    return rows[0]


def _recent(value: object) -> bool:
    assert isinstance(value, dt.datetime), value
    when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 600


async def _customer(bus: CommandBus, email: str) -> c.Actor:
    result = await bus.execute(c.RegisterCustomer(None, email, "Wendy Model"))
    return c.Actor(result.entity_id, "customer")


async def test_a_products_rows_follow_its_price_and_stock(
    write: tuple[CommandBus, Engine],
) -> None:
    bus, engine = write
    added = await bus.execute(c.AddProduct(STAFF, "WM-1", "Mug", 1200, 7, " A mug. "))
    product = _row(engine, w.products, sku="WM-1")
    assert product.id == added.entity_id
    assert (product.name, product.description, product.currency) == ("Mug", "A mug.", "EUR")
    assert (product.price_cents, product.stock_on_hand, product.stock_reserved) == (1200, 7, 0)
    assert product.version == 1
    assert _recent(product.created_at) and _recent(product.updated_at)

    await bus.execute(c.ChangeProductPrice(STAFF, "WM-1", 1450))
    await bus.execute(c.RestockProduct(STAFF, "WM-1", 3))
    product = _row(engine, w.products, sku="WM-1")
    assert (product.price_cents, product.stock_on_hand, product.stock_reserved) == (1450, 10, 0)
    assert product.version == 3
    assert product.updated_at >= product.created_at


async def test_an_orders_rows_through_its_whole_life(write: tuple[CommandBus, Engine]) -> None:
    bus, engine = write
    await bus.execute(c.AddProduct(STAFF, "WM-2", "Pen", 300, 10))
    await bus.execute(c.AddProduct(STAFF, "WM-3", "Pad", 550, 4))
    alice = await _customer(bus, "wm-alice@example.com")
    lines = (c.LineRequest("WM-3", 1), c.LineRequest("WM-2", 2))
    placed = await bus.execute(c.PlaceOrder(alice, lines, "wm-key-1"))
    order_id = placed.entity_id

    order = _row(engine, w.orders, id=order_id)
    assert (order.customer_id, order.status, order.version) == (alice.id, "PLACED", 1)
    assert (order.currency, order.total_cents, order.item_count) == ("EUR", 1150, 3)
    assert order.idempotency_key == "wm-key-1"
    assert isinstance(order.request_hash, str) and len(order.request_hash) == 64
    assert _recent(order.placed_at) and order.updated_at == order.placed_at
    with engine.connect() as conn:
        stored_lines = conn.execute(
            sa.select(
                w.order_lines.c.line_no,
                w.order_lines.c.sku,
                w.order_lines.c.product_name,
                w.order_lines.c.quantity,
                w.order_lines.c.unit_price_cents,
            )
            .where(w.order_lines.c.order_id == order_id)
            .order_by(w.order_lines.c.line_no)
        ).all()
    assert {tuple(line[1:]) for line in stored_lines} == {
        ("WM-2", "Pen", 2, 300),
        ("WM-3", "Pad", 1, 550),
    }
    assert [line[0] for line in stored_lines] == [1, 2]
    assert _row(engine, w.products, sku="WM-2").stock_reserved == 2

    # The same key and lines: the same order, and the position of its events to wait for.
    again = await bus.execute(c.PlaceOrder(alice, tuple(reversed(lines)), "wm-key-1"))
    assert again.entity_id == order_id
    assert again.position == placed.position
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(w.orders)) == 1

    await bus.execute(c.PayOrder(alice, order_id))
    payment = _row(engine, w.payments, order_id=order_id)
    assert (payment.status, payment.amount_cents, payment.refunded_at) == ("PAID", 1150, None)
    assert _recent(payment.paid_at)

    shipped = await bus.execute(c.ShipOrder(STAFF, order_id, " UPS ", " 1Z999 "))
    shipment = _row(engine, w.shipments, order_id=order_id)
    assert (shipment.carrier, shipment.tracking_number, shipment.status) == (
        "UPS",
        "1Z999",
        "SHIPPED",
    )
    assert _recent(shipment.shipped_at) and shipment.delivered_at is None
    pen = _row(engine, w.products, sku="WM-2")
    assert (pen.stock_on_hand, pen.stock_reserved) == (8, 0)

    delivered = await bus.execute(c.DeliverOrder(STAFF, order_id, expected_version=3))
    assert delivered.position is not None and shipped.position is not None
    assert delivered.position > shipped.position
    shipment = _row(engine, w.shipments, order_id=order_id)
    assert shipment.status == "DELIVERED" and _recent(shipment.delivered_at)
    assert (shipment.carrier, shipment.tracking_number) == ("UPS", "1Z999")
    order = _row(engine, w.orders, id=order_id)
    assert (order.status, order.version) == ("DELIVERED", 4)
    assert order.updated_at >= order.placed_at


async def test_a_cancelled_paid_order_is_refunded_and_its_stock_released(
    write: tuple[CommandBus, Engine],
) -> None:
    bus, engine = write
    await bus.execute(c.AddProduct(STAFF, "WM-4", "Cup", 800, 5))
    bob = await _customer(bus, "wm-bob@example.com")
    order_id = (await bus.execute(c.PlaceOrder(bob, (c.LineRequest("WM-4", 3),)))).entity_id
    await bus.execute(c.PayOrder(bob, order_id))
    await bus.execute(c.CancelOrder(STAFF, order_id, "damaged"))
    payment = _row(engine, w.payments, order_id=order_id)
    assert (payment.status, payment.amount_cents) == ("REFUNDED", 2400)
    assert _recent(payment.refunded_at) and payment.paid_at is not None
    cup = _row(engine, w.products, sku="WM-4")
    assert (cup.stock_on_hand, cup.stock_reserved) == (5, 0)
    order = _row(engine, w.orders, id=order_id)
    assert (order.status, order.version) == ("CANCELLED", 3)


async def test_restocking_or_repricing_an_unknown_sku_is_refused_and_writes_nothing(
    write: tuple[CommandBus, Engine],
) -> None:
    bus, engine = write
    with engine.connect() as conn:
        head = conn.scalar(sa.select(w.event_log_head.c.position))
    for command in (
        c.RestockProduct(STAFF, "WM-NONE", 3),
        c.ChangeProductPrice(STAFF, "WM-NONE", 9),
    ):
        with pytest.raises(DomainError) as refused:
            await bus.execute(command)
        assert (refused.value.code, refused.value.field) == ("UNKNOWN_SKU", "sku")
        assert refused.value.message == "No product with SKU WM-NONE"
    with engine.connect() as conn:
        assert conn.scalar(sa.select(w.event_log_head.c.position)) == head
        assert conn.scalar(sa.select(sa.func.count()).select_from(w.products)) == 0


async def test_the_bus_tells_its_process_the_last_position_each_commit_reached(
    settings: Settings,
) -> None:
    """``on_commit`` wakes this process's projections at once: called after each commit
    with the highest position it wrote, and not for a refusal that wrote nothing."""
    engine = create_sync_engine(settings.write_database_url, "write")
    told: list[int] = []
    bus = CommandBus(engine, on_commit=told.append)
    try:
        added = await bus.execute(c.AddProduct(STAFF, "WM-5", "Bowl", 700, 2))
        assert told == [added.position]
        with pytest.raises(DomainError):
            await bus.execute(c.AddProduct(STAFF, "WM-5", "Bowl again", 700, 2))
        assert told == [added.position]
        outcomes = await bus.execute_many(
            [c.RestockProduct(STAFF, "WM-5", 1), c.RestockProduct(STAFF, "WM-5", 2)]
        )
        positions = [o.position for o in outcomes if isinstance(o, CommandResult)]
        assert len(positions) == 2 and all(p is not None for p in positions)
        assert told == [added.position, max(p for p in positions if p is not None)]
    finally:
        bus.close()
        engine.dispose()
