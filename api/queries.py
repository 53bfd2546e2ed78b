"""Query resolvers. Each reads one screen's read table (plus batched loaders)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.errors import ApiError
from api.ids import decode_cursor, encode_cursor, from_global_id
from api.response_cache import mark_uncacheable
from api.types.common import Node, check_first, page_info
from api.types.customer import Customer
from api.types.dashboard import (
    ProductSales,
    ProjectionStatus,
    SalesDashboard,
    StatusCount,
)
from api.types.order import Order, OrderConnection, OrderEdge, OrderStatus
from api.types.product import Product, ProductConnection, ProductEdge
from domain.model import can_see_order
from projections.reads import Doc
from projections.screens import catalog, fulfillment_queue, order_history, sales_dashboard

TOP_PRODUCTS = 10


def _int_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    value = decode_cursor(after)
    # ASCII digits only ("²".isdigit() is true), and small enough for a 64-bit column.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError("BAD_USER_INPUT", f"Not a valid cursor: {after!r}")
    return int(value)


def order_connection(docs: list[Doc], first: int, after: str | None, key: str) -> OrderConnection:
    edges = [
        OrderEdge(cursor=encode_cursor(str(doc[key])), node=Order.from_doc(doc))
        for doc in docs[:first]
    ]
    return OrderConnection(
        edges=edges,
        page_info=page_info([edge.cursor for edge in edges], len(docs) > first, after),
    )


async def visible_order(info: Info, order_id: str) -> Order | None:
    doc = await info.context.orders.load(order_id)
    if doc is None or not can_see_order(info.context.actor, doc["customer_id"]):
        return None  # someone else's order looks exactly like a missing one
    return Order.from_doc(doc)


@strawberry.type
class Query:
    @strawberry.field(description="Fetch any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, raw_id = from_global_id(id)
        if type_name == "Order":
            return await visible_order(info, raw_id)
        if type_name == "Product":
            row = await info.context.products.load(raw_id)
            return None if row is None else Product.from_row(row)
        if type_name == "Customer":
            actor = info.context.actor
            if actor is None or not (actor.is_staff or actor.id == raw_id):
                return None
            customer = await info.context.customers.load(raw_id)
            return None if customer is None else Customer.from_row(customer)
        return None

    @strawberry.field(description="The signed-in customer's profile (null if anonymous).")
    async def me(self, info: Info) -> Customer | None:
        actor = info.context.actor
        if actor is None or actor.is_staff:
            return None
        row = await info.context.customers.load(actor.id)
        return None if row is None else Customer.from_row(row)

    @strawberry.field(description="The catalog, by name.")
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
        in_stock: bool | None = None,
    ) -> ProductConnection:
        first = check_first(first, 20)
        position: tuple[str, str] | None = None
        if after is not None:
            name, sep, product_id = decode_cursor(after).rpartition("\x00")
            if not sep:
                raise ApiError("BAD_USER_INPUT", f"Not a valid cursor: {after!r}")
            position = (name, product_id)
        rows = await catalog.products_page(
            info.context.services.read_engine, first, position, search, in_stock
        )
        edges = [
            ProductEdge(
                cursor=encode_cursor(f"{row.name}\x00{row.product_id}"), node=Product.from_row(row)
            )
            for row in rows[:first]
        ]
        return ProductConnection(
            edges=edges,
            page_info=page_info([edge.cursor for edge in edges], len(rows) > first, after),
        )

    @strawberry.field
    async def product(self, info: Info, sku: str) -> Product | None:
        row = await catalog.product_by_sku(info.context.services.read_engine, sku)
        return None if row is None else Product.from_row(row)

    @strawberry.field(description="The signed-in customer's orders, newest first.")
    async def my_orders(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: OrderStatus | None = None,
    ) -> OrderConnection:
        actor = info.context.require_actor()
        first = check_first(first, 20)
        docs = await order_history.history_page(
            info.context.services.read_engine,
            actor.id,
            first,
            _int_cursor(after),
            None if status is None else status.value,
        )
        return order_connection(docs, first, after, "sort_key")

    @strawberry.field(description="One order: your own, or any order for staff.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        type_name, raw_id = from_global_id(id)
        return await visible_order(info, raw_id) if type_name == "Order" else None

    @strawberry.field(description="Staff only.")
    async def sales_dashboard(self, info: Info) -> SalesDashboard:
        info.context.require_staff()
        figures, products = await sales_dashboard.dashboard_rows(
            info.context.services.read_engine, TOP_PRODUCTS
        )
        totals = next((row for row in figures if row.kind == "total"), None)
        counts = {row.key: row.tally for row in figures if row.kind == "status"}
        return SalesDashboard(
            order_count=totals.tally if totals else 0,
            revenue_cents=totals.amount_cents if totals else 0,
            orders_by_status=[
                StatusCount(status=status, count=counts.get(status.value, 0))
                for status in OrderStatus
            ],
            top_products=[
                ProductSales(
                    sku=row.key,
                    name=row.label or row.key,
                    units_sold=row.tally,
                    revenue_cents=row.amount_cents,
                )
                for row in products
            ],
        )

    @strawberry.field(description="Staff only: paid orders not yet shipped, oldest first.")
    async def fulfillment_queue(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> OrderConnection:
        info.context.require_staff()
        first = check_first(first, 50)
        docs = await fulfillment_queue.fulfillment_page(
            info.context.services.read_engine, first, _int_cursor(after)
        )
        return order_connection(docs, first, after, "paid_position")

    @strawberry.field(description="Staff only: where each projection is in the event log.")
    def projections(self, info: Info) -> list[ProjectionStatus]:
        info.context.require_staff()
        mark_uncacheable()  # the runner's state in memory, not a read table
        return [
            ProjectionStatus(
                name=s.name,
                position=s.position,
                head_position=s.head_position,
                lag=s.lag,
                lag_ms=s.lag_ms,
                state=s.state,
                dead_letters=s.dead_letters,
                leader=s.leader,
                leader_since=s.leader_since,
            )
            for s in info.context.services.runner.status()
        ]
