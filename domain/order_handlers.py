"""Handlers of the order commands: place, pay, cancel, ship, deliver.

Statements are built once at import (with bind parameters) and reused: building a
SQLAlchemy expression per call cost more than running it on SQLite.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import commands as c
from domain import events as e
from domain import model
from domain.event_log import Recorder
from domain.write_tables import events, order_lines, orders, payments, products, shipments

MAX_IDEMPOTENCY_KEY = 200
P = sa.bindparam

_FIND_IDEMPOTENT = sa.select(orders.c.id, orders.c.request_hash).where(
    orders.c.customer_id == P("customer_id"), orders.c.idempotency_key == P("key")
)
_LAST_POSITION = sa.select(sa.func.max(events.c.position)).where(
    events.c.stream_id == P("stream_id")
)
_PRODUCTS_FOR_ORDER = (
    sa.select(
        products.c.id,
        products.c.sku,
        products.c.name,
        products.c.price_cents,
        products.c.stock_on_hand,
        products.c.stock_reserved,
    )
    .where(products.c.sku.in_(P("skus", expanding=True)))
    .with_for_update()
)
# Guarded: never reserves more than is on hand, whatever a concurrent writer did.
_RESERVE = (
    products.update()
    .where(
        products.c.id == P("pid"),
        products.c.stock_on_hand - products.c.stock_reserved >= P("qty"),
    )
    .values(stock_reserved=products.c.stock_reserved + P("qty"))
)
_RELEASE = (
    products.update()
    .where(products.c.id == P("pid"))
    .values(stock_reserved=products.c.stock_reserved - P("qty"))
)
_SHIP_STOCK = (
    products.update()
    .where(products.c.id == P("pid"))
    .values(
        stock_on_hand=products.c.stock_on_hand - P("qty"),
        stock_reserved=products.c.stock_reserved - P("qty"),
    )
)
_LOAD_ORDER = sa.select(
    orders.c.id, orders.c.customer_id, orders.c.status, orders.c.version, orders.c.total_cents
).where(orders.c.id == P("oid"))
# Optimistic concurrency: only the transaction that read this version may move it on.
_MOVE_ORDER = (
    orders.update()
    .where(orders.c.id == P("oid"), orders.c.version == P("expected"))
    .values(status=P("new_status"), version=P("new_version"), updated_at=P("at"))
)
_LINES = (
    sa.select(order_lines).where(order_lines.c.order_id == P("oid")).order_by(order_lines.c.line_no)
)


class ConcurrencyConflict(Exception):
    """Another transaction changed the order first; the bus retries the command."""


def _request_hash(lines: list[c.LineRequest]) -> str:
    canonical = ";".join(f"{line.sku}={line.quantity}" for line in sorted(lines, key=str))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay_idempotent(
    conn: Connection, customer_id: str, key: str, request_hash: str, rec: Recorder
) -> str | None:
    row = conn.execute(_FIND_IDEMPOTENT, {"customer_id": customer_id, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise model.DomainError(
            "IDEMPOTENCY_KEY_REUSED",
            "This idempotency key was used for a different order",
            "idempotencyKey",
        )
    rec.replayed_position = conn.scalar(_LAST_POSITION, {"stream_id": f"order-{row.id}"})
    return str(row.id)


def place_order(conn: Connection, cmd: c.PlaceOrder, rec: Recorder) -> str:
    actor = model.require_customer(cmd.actor)
    lines = model.merge_lines(cmd.lines)
    key = cmd.idempotency_key
    request_hash = _request_hash(lines)
    if key is not None:
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise model.invalid("idempotencyKey", "An idempotency key is 1-200 characters")
        existing = _replay_idempotent(conn, actor.id, key, request_hash, rec)
        if existing is not None:
            return existing
    found = {
        row.sku: row
        for row in conn.execute(_PRODUCTS_FOR_ORDER, {"skus": [line.sku for line in lines]})
    }
    for line in lines:
        row = found.get(line.sku)
        stock = None if row is None else model.StockLevel(row.stock_on_hand, row.stock_reserved)
        model.check_available(line.sku, line.quantity, stock)
    priced = tuple(
        e.OrderLineData(
            line.sku,
            found[line.sku].id,
            found[line.sku].name,
            line.quantity,
            found[line.sku].price_cents,
        )
        for line in lines
    )
    for p in priced:
        reserved = conn.execute(_RESERVE, {"pid": p.product_id, "qty": p.quantity})
        if reserved.rowcount != 1:  # a concurrent writer got there first
            model.check_available(p.sku, p.quantity, model.StockLevel(0, 0))
    total, items = model.order_total((p.quantity, p.unit_price_cents) for p in priced)
    order_id = str(uuid.uuid4())
    conn.execute(
        orders.insert(),
        {
            "id": order_id,
            "customer_id": actor.id,
            "status": model.OrderStatus.PLACED.value,
            "currency": model.CURRENCY,
            "total_cents": total,
            "item_count": items,
            "version": 1,
            "idempotency_key": key,
            "request_hash": request_hash,
            "placed_at": rec.now,
            "updated_at": rec.now,
        },
    )
    conn.execute(
        order_lines.insert(),
        [
            {
                "order_id": order_id,
                "line_no": n,
                "product_id": p.product_id,
                "sku": p.sku,
                "product_name": p.product_name,
                "quantity": p.quantity,
                "unit_price_cents": p.unit_price_cents,
            }
            for n, p in enumerate(priced, start=1)
        ],
    )
    rec.record(
        f"order-{order_id}",
        1,
        e.OrderPlaced(order_id, actor.id, priced, total, items, model.CURRENCY),
    )
    return order_id


OrderCommand = c.PayOrder | c.CancelOrder | c.ShipOrder | c.DeliverOrder


def _transition(conn: Connection, action: str, cmd: OrderCommand, rec: Recorder) -> tuple[Any, int]:
    """Authorize and move the order to its next status; return the row and new version."""
    order_id = cmd.order_id
    order = conn.execute(_LOAD_ORDER, {"oid": order_id}).first()
    if order is None:
        raise model.DomainError("NOT_FOUND", "No such order", "orderId")
    model.authorize_order_action(action, cmd.actor, order.customer_id)
    model.check_version(cmd.expected_version, order.version)
    status = model.transition(action, model.OrderStatus(order.status))
    moved = conn.execute(
        _MOVE_ORDER,
        {
            "oid": order.id,
            "expected": order.version,
            "new_status": status.value,
            "new_version": order.version + 1,
            "at": rec.now,
        },
    )
    if moved.rowcount != 1:
        raise ConcurrencyConflict(order_id)
    return order, order.version + 1


def _lines(conn: Connection, order_id: str) -> tuple[e.OrderLineData, ...]:
    return tuple(
        e.OrderLineData(r.sku, r.product_id, r.product_name, r.quantity, r.unit_price_cents)
        for r in conn.execute(_LINES, {"oid": order_id})
    )


def _stock(conn: Connection, statement: sa.Update, lines: tuple[e.OrderLineData, ...]) -> None:
    conn.execute(statement, [{"pid": line.product_id, "qty": line.quantity} for line in lines])


def pay_order(conn: Connection, cmd: c.PayOrder, rec: Recorder) -> str:
    order, version = _transition(conn, "pay", cmd, rec)
    conn.execute(
        payments.insert(),
        {
            "order_id": order.id,
            "status": "PAID",
            "amount_cents": order.total_cents,
            "paid_at": rec.now,
            "refunded_at": None,
        },
    )
    lines = _lines(conn, order.id)
    rec.record(
        f"order-{order.id}",
        version,
        e.OrderPaid(order.id, order.customer_id, order.total_cents, lines),
    )
    return str(order.id)


def cancel_order(conn: Connection, cmd: c.CancelOrder, rec: Recorder) -> str:
    reason = model.clean_text("reason", cmd.reason) if cmd.reason and cmd.reason.strip() else None
    order, version = _transition(conn, "cancel", cmd, rec)
    lines = _lines(conn, order.id)
    _stock(conn, _RELEASE, lines)
    refunded = 0
    if order.status == model.OrderStatus.PAID.value:
        refunded = order.total_cents
        conn.execute(
            payments.update()
            .where(payments.c.order_id == order.id)
            .values(status="REFUNDED", refunded_at=rec.now)
        )
    assert cmd.actor is not None  # authorize_order_action refused anonymous callers
    rec.record(
        f"order-{order.id}",
        version,
        e.OrderCancelled(
            order.id, order.customer_id, reason, cmd.actor.role, order.status, lines, refunded
        ),
    )
    return str(order.id)


def ship_order(conn: Connection, cmd: c.ShipOrder, rec: Recorder) -> str:
    carrier = model.clean_text("carrier", cmd.carrier)
    tracking = model.clean_text("trackingNumber", cmd.tracking_number)
    order, version = _transition(conn, "ship", cmd, rec)
    _stock(conn, _SHIP_STOCK, _lines(conn, order.id))
    conn.execute(
        shipments.insert(),
        {
            "order_id": order.id,
            "carrier": carrier,
            "tracking_number": tracking,
            "status": "SHIPPED",
            "shipped_at": rec.now,
            "delivered_at": None,
        },
    )
    rec.record(
        f"order-{order.id}",
        version,
        e.OrderShipped(order.id, order.customer_id, carrier, tracking),
    )
    return str(order.id)


def deliver_order(conn: Connection, cmd: c.DeliverOrder, rec: Recorder) -> str:
    order, version = _transition(conn, "deliver", cmd, rec)
    conn.execute(
        shipments.update()
        .where(shipments.c.order_id == order.id)
        .values(status="DELIVERED", delivered_at=rec.now)
    )
    rec.record(f"order-{order.id}", version, e.OrderDelivered(order.id, order.customer_id))
    return str(order.id)
