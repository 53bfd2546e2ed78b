"""Order queries: the signed-in customer's orders and one order by id (plus the
connection and visibility helpers the node and staff queries share)."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.errors import ApiError
from api.graphql.ids import decode_cursor, encode_cursor, from_global_id
from api.graphql.orders.types import Order, OrderConnection, OrderEdge, OrderStatus
from api.graphql.types import check_first, page_info
from domain.model import can_see_order
from projections.reads import Doc
from projections.screens import order_history


def int_cursor(after: str | None) -> int | None:
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
class OrderQuery:
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
            int_cursor(after),
            None if status is None else status.value,
        )
        return order_connection(docs, first, after, "sort_key")

    @strawberry.field(description="One order: your own, or any order for staff.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        type_name, raw_id = from_global_id(id)
        return await visible_order(info, raw_id) if type_name == "Order" else None
