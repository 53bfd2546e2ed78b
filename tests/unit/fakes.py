"""An in-memory unit of work, so command handlers run without a database.

It keeps the write model's guarantees that handlers rely on: a reservation never takes
more than is available (as the guarded UPDATE and the CHECK constraint), an order moves
only from the version that was read, and a refused command leaves nothing behind (as
the bus's savepoint). ``conflict_on_move`` plays a concurrent writer that moved the
order between the handler's read and its write.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import uuid
from typing import Any

from domain.bus import CommandResult, handle
from domain.commands import Command
from domain.event_log import Recorder
from domain.events import Event, OrderLineData
from domain.model import DomainError, OrderStatus
from domain.unit_of_work import NewOrder, Order, PlacedOrder, Product


@dataclasses.dataclass
class StoredOrder:
    order: NewOrder
    lines: tuple[OrderLineData, ...]
    status: OrderStatus = OrderStatus.PLACED
    version: int = 1


@dataclasses.dataclass
class State:
    customers: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    products: dict[str, Product] = dataclasses.field(default_factory=dict)  # by SKU
    orders: dict[str, StoredOrder] = dataclasses.field(default_factory=dict)
    payments: dict[str, str] = dataclasses.field(default_factory=dict)  # order id -> status
    shipments: dict[str, str] = dataclasses.field(default_factory=dict)
    # The event log: (position, stream id, stream version, event).
    log: list[tuple[int, str, int, Event]] = dataclasses.field(default_factory=list)


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.state = State()
        self.events = self._recorder()
        self.conflict_on_move = False

    @staticmethod
    def _recorder() -> Recorder:
        return Recorder(command_id=str(uuid.uuid4()), now=dt.datetime.now(dt.UTC))

    def execute(self, command: Command) -> CommandResult:
        """Run one command as the bus does: all of it, or (refused) nothing of it."""
        self.events = self._recorder()
        before = copy.deepcopy(self.state)
        try:
            return handle(self, command)
        except Exception:
            self.state = before
            raise

    def refused(self, command: Command) -> DomainError:
        try:
            self.execute(command)
        except DomainError as error:
            return error
        raise AssertionError(f"{command} was accepted")

    def stream(self, stream_id: str) -> list[Event]:
        return [event for _, stream, _, event in self.state.log if stream == stream_id]

    # -- the unit of work
    def append_events(self) -> int | None:
        start = len(self.state.log) + 1
        for position, (stream_id, version, event) in zip(
            itertools.count(start), self.events.pending, strict=False
        ):
            if any(s == stream_id and v == version for _, s, v, _ in self.state.log):
                raise AssertionError(f"{stream_id} already has version {version}")
            self.state.log.append((position, stream_id, version, event))
        return len(self.state.log) if self.events.pending else None

    def email_taken(self, email: str) -> bool:
        return any(taken == email for taken, _ in self.state.customers.values())

    def add_customer(self, customer_id: str, email: str, name: str) -> None:
        self.state.customers[customer_id] = (email, name)

    def sku_taken(self, sku: str) -> bool:
        return sku in self.state.products

    def add_product(self, product: Product, description: str | None, currency: str) -> None:
        self.state.products[product.sku] = product

    def get_product(self, sku: str) -> Product | None:
        return self.state.products.get(sku)

    def get_products(self, skus: list[str]) -> dict[str, Product]:
        return {sku: self.state.products[sku] for sku in skus if sku in self.state.products}

    def _by_id(self, product_id: str) -> Product:
        [product] = [p for p in self.state.products.values() if p.id == product_id]
        return product

    def _replace(self, product: Product, **changes: Any) -> None:
        changed = product._replace(**changes)
        assert 0 <= changed.stock_reserved <= changed.stock_on_hand, changed  # the CHECKs
        self.state.products[product.sku] = changed

    def add_stock(self, product_id: str, quantity: int) -> None:
        p = self._by_id(product_id)
        self._replace(p, stock_on_hand=p.stock_on_hand + quantity, version=p.version + 1)

    def set_price(self, product_id: str, price_cents: int) -> None:
        p = self._by_id(product_id)
        self._replace(p, price_cents=price_cents, version=p.version + 1)

    def reserve_stock(self, product_id: str, quantity: int) -> bool:
        p = self._by_id(product_id)
        if p.stock_on_hand - p.stock_reserved < quantity:
            return False
        self._replace(p, stock_reserved=p.stock_reserved + quantity)
        return True

    def release_stock(self, lines: tuple[OrderLineData, ...]) -> None:
        for line in lines:
            p = self._by_id(line.product_id)
            self._replace(p, stock_reserved=p.stock_reserved - line.quantity)

    def ship_stock(self, lines: tuple[OrderLineData, ...]) -> None:
        for line in lines:
            p = self._by_id(line.product_id)
            self._replace(
                p,
                stock_on_hand=p.stock_on_hand - line.quantity,
                stock_reserved=p.stock_reserved - line.quantity,
            )

    def find_order_by_key(self, customer_id: str, key: str) -> PlacedOrder | None:
        for stored in self.state.orders.values():
            order = stored.order
            if order.customer_id == customer_id and order.idempotency_key == key:
                return PlacedOrder(order.id, order.request_hash)
        return None

    def last_position(self, stream_id: str) -> int | None:
        positions = [p for p, stream, _, _ in self.state.log if stream == stream_id]
        return max(positions, default=None)

    def insert_order(self, order: NewOrder, lines: tuple[OrderLineData, ...]) -> None:
        assert self.find_order_by_key(order.customer_id, order.idempotency_key or "") is None
        self.state.orders[order.id] = StoredOrder(order, lines)

    def get_order(self, order_id: str) -> Order | None:
        stored = self.state.orders.get(order_id)
        if stored is None:
            return None
        o = stored.order
        return Order(o.id, o.customer_id, stored.status, stored.version, o.total_cents)

    def move_order(self, order: Order, status: OrderStatus) -> bool:
        stored = self.state.orders[order.id]
        if self.conflict_on_move:
            stored.version += 1  # another writer moved it first
        if stored.version != order.version:
            return False
        stored.status, stored.version = status, order.version + 1
        return True

    def order_lines(self, order_id: str) -> tuple[OrderLineData, ...]:
        return self.state.orders[order_id].lines

    def record_payment(self, order_id: str, amount_cents: int) -> None:
        assert order_id not in self.state.payments
        self.state.payments[order_id] = "PAID"

    def refund_payment(self, order_id: str) -> None:
        self.state.payments[order_id] = "REFUNDED"

    def add_shipment(self, order_id: str, carrier: str, tracking_number: str) -> None:
        self.state.shipments[order_id] = "SHIPPED"

    def deliver_shipment(self, order_id: str) -> None:
        self.state.shipments[order_id] = "DELIVERED"
