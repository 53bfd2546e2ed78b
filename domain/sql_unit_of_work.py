"""The unit of work on the write database: one SQLAlchemy connection, inside the
transaction (or savepoint) the command bus opened.

Statements are built once at import (with bind parameters) and reused: building a
SQLAlchemy expression is dearer than running it on SQLite, and placeOrder runs these on
every call. The guards that keep the data right under concurrency are in the SQL itself:
the reservation only matches while enough stock is available, a move of an order only
matches the version that was read, and the CHECK constraints of ``write_tables.py``
back both.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.event_log import Recorder, append
from domain.events import OrderLineData
from domain.model import OrderStatus
from domain.unit_of_work import NewOrder, Order, PlacedOrder, Product
from domain.write_tables import (
    customers,
    events,
    order_lines,
    orders,
    payments,
    products,
    shipments,
)

P = sa.bindparam

_EMAIL_TAKEN = sa.select(customers.c.id).where(customers.c.email == P("email"))
_SKU_TAKEN = sa.select(products.c.id).where(products.c.sku == P("sku"))
_PRODUCT_COLUMNS = (
    products.c.id,
    products.c.sku,
    products.c.name,
    products.c.price_cents,
    products.c.version,
    products.c.stock_on_hand,
    products.c.stock_reserved,
)
_PRODUCT = sa.select(*_PRODUCT_COLUMNS).where(products.c.sku == P("sku")).with_for_update()
_PRODUCTS = (
    sa.select(*_PRODUCT_COLUMNS)
    .where(products.c.sku.in_(P("skus", expanding=True)))
    .with_for_update()
)
_ADD_STOCK = (
    products.update()
    .where(products.c.id == P("pid"))
    .values(
        stock_on_hand=products.c.stock_on_hand + P("qty"),
        version=products.c.version + 1,
        updated_at=P("at"),
    )
)
_SET_PRICE = (
    products.update()
    .where(products.c.id == P("pid"))
    .values(price_cents=P("price"), version=products.c.version + 1, updated_at=P("at"))
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
_FIND_BY_KEY = sa.select(orders.c.id, orders.c.request_hash).where(
    orders.c.customer_id == P("customer_id"), orders.c.idempotency_key == P("key")
)
_LAST_POSITION = sa.select(sa.func.max(events.c.position)).where(
    events.c.stream_id == P("stream_id")
)
_INSERT_ORDER = orders.insert()
_INSERT_LINES = order_lines.insert()
_ORDER = sa.select(
    orders.c.id, orders.c.customer_id, orders.c.status, orders.c.version, orders.c.total_cents
).where(orders.c.id == P("oid"))
# Optimistic concurrency: only the transaction that read this version may move it on.
_MOVE_ORDER = (
    orders.update()
    .where(orders.c.id == P("oid"), orders.c.version == P("expected"))
    .values(status=P("new_status"), version=P("new_version"), updated_at=P("at"))
)
_LINES = (
    sa.select(
        order_lines.c.sku,
        order_lines.c.product_id,
        order_lines.c.product_name,
        order_lines.c.quantity,
        order_lines.c.unit_price_cents,
    )
    .where(order_lines.c.order_id == P("oid"))
    .order_by(order_lines.c.line_no)
)
_INSERT_PAYMENT = payments.insert()
_REFUND = (
    payments.update()
    .where(payments.c.order_id == P("oid"))
    .values(status="REFUNDED", refunded_at=P("at"))
)
_INSERT_SHIPMENT = shipments.insert()
_DELIVER = (
    shipments.update()
    .where(shipments.c.order_id == P("oid"))
    .values(status="DELIVERED", delivered_at=P("at"))
)


class SqlUnitOfWork:
    def __init__(self, conn: Connection, events: Recorder) -> None:
        self.conn = conn
        self.events = events

    def append_events(self) -> int | None:
        """Append the recorded events; the position of the last one (None if none)."""
        return append(self.conn, self.events)

    # -- customers
    def email_taken(self, email: str) -> bool:
        return self.conn.scalar(_EMAIL_TAKEN, {"email": email}) is not None

    def add_customer(self, customer_id: str, email: str, name: str) -> None:
        self.conn.execute(
            customers.insert().values(
                id=customer_id, email=email, name=name, created_at=self.events.now
            )
        )

    # -- catalog
    def sku_taken(self, sku: str) -> bool:
        return self.conn.scalar(_SKU_TAKEN, {"sku": sku}) is not None

    def add_product(self, product: Product, description: str | None, currency: str) -> None:
        self.conn.execute(
            products.insert().values(
                **product._asdict(),
                description=description,
                currency=currency,
                created_at=self.events.now,
                updated_at=self.events.now,
            )
        )

    def get_product(self, sku: str) -> Product | None:
        row = self.conn.execute(_PRODUCT, {"sku": sku}).first()
        return None if row is None else Product._make(row)

    def get_products(self, skus: list[str]) -> dict[str, Product]:
        return {row.sku: Product._make(row) for row in self.conn.execute(_PRODUCTS, {"skus": skus})}

    def add_stock(self, product_id: str, quantity: int) -> None:
        self.conn.execute(_ADD_STOCK, {"pid": product_id, "qty": quantity, "at": self.events.now})

    def set_price(self, product_id: str, price_cents: int) -> None:
        self.conn.execute(
            _SET_PRICE, {"pid": product_id, "price": price_cents, "at": self.events.now}
        )

    def reserve_stock(self, product_id: str, quantity: int) -> bool:
        return self.conn.execute(_RESERVE, {"pid": product_id, "qty": quantity}).rowcount == 1

    def release_stock(self, lines: tuple[OrderLineData, ...]) -> None:
        self._stock(_RELEASE, lines)

    def ship_stock(self, lines: tuple[OrderLineData, ...]) -> None:
        self._stock(_SHIP_STOCK, lines)

    def _stock(self, statement: sa.Update, lines: tuple[OrderLineData, ...]) -> None:
        self.conn.execute(
            statement, [{"pid": line.product_id, "qty": line.quantity} for line in lines]
        )

    # -- orders
    def find_order_by_key(self, customer_id: str, key: str) -> PlacedOrder | None:
        row = self.conn.execute(_FIND_BY_KEY, {"customer_id": customer_id, "key": key}).first()
        return None if row is None else PlacedOrder._make(row)

    def last_position(self, stream_id: str) -> int | None:
        position: int | None = self.conn.scalar(_LAST_POSITION, {"stream_id": stream_id})
        return position

    def insert_order(self, order: NewOrder, lines: tuple[OrderLineData, ...]) -> None:
        now = self.events.now
        self.conn.execute(
            _INSERT_ORDER,
            {
                **order._asdict(),
                "status": OrderStatus.PLACED.value,
                "version": 1,
                "placed_at": now,
                "updated_at": now,
            },
        )
        self.conn.execute(
            _INSERT_LINES,
            [
                {
                    "order_id": order.id,
                    "line_no": n,
                    "product_id": line.product_id,
                    "sku": line.sku,
                    "product_name": line.product_name,
                    "quantity": line.quantity,
                    "unit_price_cents": line.unit_price_cents,
                }
                for n, line in enumerate(lines, start=1)
            ],
        )

    def get_order(self, order_id: str) -> Order | None:
        row = self.conn.execute(_ORDER, {"oid": order_id}).first()
        if row is None:
            return None
        return Order(row.id, row.customer_id, OrderStatus(row.status), row.version, row.total_cents)

    def move_order(self, order: Order, status: OrderStatus) -> bool:
        moved = self.conn.execute(
            _MOVE_ORDER,
            {
                "oid": order.id,
                "expected": order.version,
                "new_status": status.value,
                "new_version": order.version + 1,
                "at": self.events.now,
            },
        )
        return moved.rowcount == 1

    def order_lines(self, order_id: str) -> tuple[OrderLineData, ...]:
        return tuple(OrderLineData(*row) for row in self.conn.execute(_LINES, {"oid": order_id}))

    def record_payment(self, order_id: str, amount_cents: int) -> None:
        self.conn.execute(
            _INSERT_PAYMENT,
            {
                "order_id": order_id,
                "status": "PAID",
                "amount_cents": amount_cents,
                "paid_at": self.events.now,
                "refunded_at": None,
            },
        )

    def refund_payment(self, order_id: str) -> None:
        self.conn.execute(_REFUND, {"oid": order_id, "at": self.events.now})

    def add_shipment(self, order_id: str, carrier: str, tracking_number: str) -> None:
        self.conn.execute(
            _INSERT_SHIPMENT,
            {
                "order_id": order_id,
                "carrier": carrier,
                "tracking_number": tracking_number,
                "status": "SHIPPED",
                "shipped_at": self.events.now,
                "delivered_at": None,
            },
        )

    def deliver_shipment(self, order_id: str) -> None:
        self.conn.execute(_DELIVER, {"oid": order_id, "at": self.events.now})
