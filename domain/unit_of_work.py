"""The unit of work: what a command handler may read and write, inside the transaction
(or savepoint) the command bus opened for it.

Handlers see only this seam, so they run the same against the write database
(``domain/sql_unit_of_work.py``) and against the in-memory fake of the unit tests. Each
method is named for what a handler needs; the bus, not the handler, commits.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from domain.event_log import Recorder
from domain.events import OrderLineData
from domain.model import OrderStatus


class ConcurrencyConflict(Exception):
    """Another transaction changed the order first; the bus retries the command."""


class Product(NamedTuple):
    id: str
    sku: str
    name: str
    price_cents: int
    version: int
    stock_on_hand: int
    stock_reserved: int


class Order(NamedTuple):
    id: str
    customer_id: str
    status: OrderStatus
    version: int
    total_cents: int


class NewOrder(NamedTuple):
    id: str
    customer_id: str
    currency: str
    total_cents: int
    item_count: int
    idempotency_key: str | None
    request_hash: str


class PlacedOrder(NamedTuple):
    """An order found by its customer's idempotency key."""

    id: str
    request_hash: str


class UnitOfWork(Protocol):
    # The events the command produces, appended by the bus with the state change.
    events: Recorder

    def append_events(self) -> int | None:
        """Append the recorded events to the log; the position of the last one (None if
        none). Positions are handed out in the command's own transaction."""
        ...

    # -- customers
    def email_taken(self, email: str) -> bool: ...
    def add_customer(self, customer_id: str, email: str, name: str) -> None: ...

    # -- catalog
    def sku_taken(self, sku: str) -> bool: ...
    def add_product(self, product: Product, description: str | None, currency: str) -> None: ...
    def get_product(self, sku: str) -> Product | None:
        """The product, locked for update until the command ends."""
        ...

    def get_products(self, skus: list[str]) -> dict[str, Product]:
        """The products of these SKUs that exist, by SKU, locked for update."""
        ...

    def add_stock(self, product_id: str, quantity: int) -> None: ...
    def set_price(self, product_id: str, price_cents: int) -> None: ...
    def reserve_stock(self, product_id: str, quantity: int) -> bool:
        """Reserve only if that much is available now; False (nothing changed) if not."""
        ...

    def release_stock(self, lines: tuple[OrderLineData, ...]) -> None: ...
    def ship_stock(self, lines: tuple[OrderLineData, ...]) -> None:
        """Reserved stock leaves the warehouse: off hand and off reserved."""
        ...

    # -- orders
    def find_order_by_key(self, customer_id: str, key: str) -> PlacedOrder | None: ...
    def last_position(self, stream_id: str) -> int | None:
        """The log position of the stream's newest event (None: no event)."""
        ...

    def insert_order(self, order: NewOrder, lines: tuple[OrderLineData, ...]) -> None: ...
    def get_order(self, order_id: str) -> Order | None: ...
    def move_order(self, order: Order, status: OrderStatus) -> bool:
        """Move the order to ``status`` and its next version, only if it is still at
        ``order.version`` (optimistic concurrency); False if another writer moved it."""
        ...

    def order_lines(self, order_id: str) -> tuple[OrderLineData, ...]: ...
    def record_payment(self, order_id: str, amount_cents: int) -> None: ...
    def refund_payment(self, order_id: str) -> None: ...
    def add_shipment(self, order_id: str, carrier: str, tracking_number: str) -> None: ...
    def deliver_shipment(self, order_id: str) -> None: ...
