"""Handlers of the order commands: place (customer), pay (owner), cancel (owner or
staff), ship and deliver (staff)."""

from __future__ import annotations

import hashlib
import uuid

from domain import commands as c
from domain import events as e
from domain import model
from domain.model import OrderStatus
from domain.unit_of_work import ConcurrencyConflict, NewOrder, Order, UnitOfWork

MAX_IDEMPOTENCY_KEY = 200


def _request_hash(lines: list[c.LineRequest]) -> str:
    canonical = ";".join(f"{line.sku}={line.quantity}" for line in sorted(lines, key=str))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay_idempotent(
    uow: UnitOfWork, customer_id: str, key: str, request_hash: str
) -> str | None:
    """The order this key placed before (its events' position to wait for is recorded),
    or None if the key is new; refused if the key placed a different order."""
    earlier = uow.find_order_by_key(customer_id, key)
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        raise model.DomainError(
            "IDEMPOTENCY_KEY_REUSED",
            "This idempotency key was used for a different order",
            "idempotencyKey",
        )
    uow.events.replayed_position = uow.last_position(f"order-{earlier.id}")
    return earlier.id


def place_order(uow: UnitOfWork, cmd: c.PlaceOrder) -> str:
    actor = model.require_customer(cmd.actor)
    lines = model.merge_lines(cmd.lines)
    key = cmd.idempotency_key
    request_hash = _request_hash(lines)
    if key is not None:
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise model.invalid("idempotencyKey", "An idempotency key is 1-200 characters")
        existing = _replay_idempotent(uow, actor.id, key, request_hash)
        if existing is not None:
            return existing
    found = uow.get_products([line.sku for line in lines])
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
    # Rows locked in one order (product id) by every order: two orders of the same products
    # never wait for each other's rows crosswise (a deadlock on PostgreSQL).
    for p in sorted(priced, key=lambda p: p.product_id):
        if not uow.reserve_stock(p.product_id, p.quantity):  # a concurrent writer won
            model.check_available(p.sku, p.quantity, model.StockLevel(0, 0))
    total, items = model.order_total((p.quantity, p.unit_price_cents) for p in priced)
    order_id = str(uuid.uuid4())
    uow.insert_order(
        NewOrder(order_id, actor.id, model.CURRENCY, total, items, key, request_hash), priced
    )
    uow.events.record(
        f"order-{order_id}",
        1,
        e.OrderPlaced(order_id, actor.id, priced, total, items, model.CURRENCY),
    )
    return order_id


OrderCommand = c.PayOrder | c.CancelOrder | c.ShipOrder | c.DeliverOrder


def _transition(uow: UnitOfWork, action: str, cmd: OrderCommand) -> tuple[Order, int]:
    """Authorize and move the order to its next status; the order as it was read and
    its new version."""
    order = uow.get_order(cmd.order_id)
    if order is None:
        raise model.DomainError("NOT_FOUND", "No such order", "orderId")
    model.authorize_order_action(action, cmd.actor, order.customer_id)
    model.check_version(cmd.expected_version, order.version)
    status = model.transition(action, order.status)
    if not uow.move_order(order, status):
        raise ConcurrencyConflict(order.id)
    return order, order.version + 1


def pay_order(uow: UnitOfWork, cmd: c.PayOrder) -> str:
    order, version = _transition(uow, "pay", cmd)
    uow.record_payment(order.id, order.total_cents)
    lines = uow.order_lines(order.id)
    uow.events.record(
        f"order-{order.id}",
        version,
        e.OrderPaid(order.id, order.customer_id, order.total_cents, lines),
    )
    return order.id


def cancel_order(uow: UnitOfWork, cmd: c.CancelOrder) -> str:
    reason = model.clean_text("reason", cmd.reason) if cmd.reason and cmd.reason.strip() else None
    order, version = _transition(uow, "cancel", cmd)
    lines = uow.order_lines(order.id)
    uow.release_stock(lines)
    refunded = 0
    if order.status == OrderStatus.PAID:
        refunded = order.total_cents
        uow.refund_payment(order.id)
    assert cmd.actor is not None  # authorize_order_action refused anonymous callers
    uow.events.record(
        f"order-{order.id}",
        version,
        e.OrderCancelled(
            order.id,
            order.customer_id,
            reason,
            cmd.actor.role,
            order.status.value,
            lines,
            refunded,
        ),
    )
    return order.id


def ship_order(uow: UnitOfWork, cmd: c.ShipOrder) -> str:
    carrier = model.clean_text("carrier", cmd.carrier)
    tracking = model.clean_text("trackingNumber", cmd.tracking_number)
    order, version = _transition(uow, "ship", cmd)
    uow.ship_stock(uow.order_lines(order.id))
    uow.add_shipment(order.id, carrier, tracking)
    uow.events.record(
        f"order-{order.id}",
        version,
        e.OrderShipped(order.id, order.customer_id, carrier, tracking),
    )
    return order.id


def deliver_order(uow: UnitOfWork, cmd: c.DeliverOrder) -> str:
    order, version = _transition(uow, "deliver", cmd)
    uow.deliver_shipment(order.id)
    uow.events.record(f"order-{order.id}", version, e.OrderDelivered(order.id, order.customer_id))
    return order.id
