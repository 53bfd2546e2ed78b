"""The root fields a plan can run: each reads its screen's table and makes the same checks,
in the same order, as its Strawberry resolver (api/graphql/*/queries.py, api/graphql/
node.py), raising the same errors; it returns the source its type's fields are read
from (api/graphql/compiled/sources.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from api.graphql.catalog.queries import product_cursor, product_position
from api.graphql.errors import ApiError
from api.graphql.ids import encode_cursor, from_global_id
from api.graphql.orders.queries import int_cursor
from api.graphql.staff.queries import TOP_PRODUCTS
from api.graphql.types import check_first
from domain.model import OrderStatus, can_see_order, require_staff
from projections.reads import Doc
from projections.screens import (
    catalog,
    customer_profile,
    fulfillment_queue,
    order_detail,
    order_history,
    sales_dashboard,
)

from .run import Run

Args = dict[str, Any]
Resolve = Callable[[Run, Args], Awaitable[Any]]
PageInfo = tuple[bool, bool, str | None, str | None]


def _page_info(cursors: list[str], has_next: bool, after: str | None) -> PageInfo:
    return (
        has_next,
        after is not None,
        cursors[0] if cursors else None,
        cursors[-1] if cursors else None,
    )


def _orders(docs: list[Doc], first: int, after: str | None, key: str) -> Any:
    edges = [(encode_cursor(str(doc[key])), doc) for doc in docs[:first]]
    return edges, _page_info([cursor for cursor, _ in edges], len(docs) > first, after)


async def _visible_order(run: Run, order_id: str) -> Doc | None:
    doc = (await order_detail.orders_by_ids(run.engine, [order_id])).get(order_id)
    if doc is None or not can_see_order(run.actor, doc["customer_id"]):
        return None
    return doc


async def products(run: Run, args: Args) -> Any:
    first = check_first(args.get("first"), 20)
    after = args.get("after")
    rows = await catalog.products_page(
        run.engine, first, product_position(after), args.get("search"), args.get("inStock")
    )
    edges = [(product_cursor(row), row) for row in rows[:first]]
    return edges, _page_info([cursor for cursor, _ in edges], len(rows) > first, after)


async def product(run: Run, args: Args) -> Any:
    return await catalog.product_by_sku(run.engine, args["sku"])


async def me(run: Run, args: Args) -> Any:
    actor = run.actor
    if actor is None or actor.is_staff:
        return None
    return (await customer_profile.customers_by_ids(run.engine, [actor.id])).get(actor.id)


async def my_orders(run: Run, args: Args) -> Any:
    if run.actor is None:
        raise ApiError("UNAUTHENTICATED", "Sign in to see this")
    first = check_first(args.get("first"), 20)
    after = args.get("after")
    status = args.get("status")
    docs = await order_history.history_page(
        run.engine,
        run.actor.id,
        first,
        int_cursor(after),
        None if status is None else OrderStatus(status).value,
    )
    return _orders(docs, first, after, "sort_key")


async def order(run: Run, args: Args) -> Any:
    type_name, raw_id = from_global_id(args["id"])
    return await _visible_order(run, raw_id) if type_name == "Order" else None


async def node(run: Run, args: Args) -> Any:
    """(concrete type name, source), or None."""
    type_name, raw_id = from_global_id(args["id"])
    found: Any = None
    if type_name == "Order":
        found = await _visible_order(run, raw_id)
    elif type_name == "Product":
        found = (await catalog.products_by_ids(run.engine, [raw_id])).get(raw_id)
    elif type_name == "Customer":
        actor = run.actor
        if actor is None or not (actor.is_staff or actor.id == raw_id):
            return None
        found = (await customer_profile.customers_by_ids(run.engine, [raw_id])).get(raw_id)
    return None if found is None else (type_name, found)


async def sales_dashboard_(run: Run, args: Args) -> Any:
    require_staff(run.actor, "see this")
    figures, top = await sales_dashboard.dashboard_rows(run.engine, TOP_PRODUCTS)
    totals = next((row for row in figures if row.kind == "total"), None)
    counts = {row.key: row.tally for row in figures if row.kind == "status"}
    return (
        totals.tally if totals else 0,
        totals.amount_cents if totals else 0,
        [(status.name, counts.get(status.value, 0)) for status in OrderStatus],
        top,
    )


async def fulfillment_queue_(run: Run, args: Args) -> Any:
    require_staff(run.actor, "see this")
    first = check_first(args.get("first"), 50)
    after = args.get("after")
    docs = await fulfillment_queue.fulfillment_page(run.engine, first, int_cursor(after))
    return _orders(docs, first, after, "paid_position")


# Root field -> (resolver, the object type it returns; None: Node, resolved per object).
ROOTS: dict[str, tuple[Resolve, str | None]] = {
    "node": (node, None),
    "me": (me, "Customer"),
    "products": (products, "ProductConnection"),
    "product": (product, "Product"),
    "myOrders": (my_orders, "OrderConnection"),
    "order": (order, "Order"),
    "salesDashboard": (sales_dashboard_, "SalesDashboard"),
    "fulfillmentQueue": (fulfillment_queue_, "OrderConnection"),
}

# The types a Node can be (node(id:) answers only these).
NODE_TYPES = ("Order", "Product", "Customer")
