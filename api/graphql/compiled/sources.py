"""Where each field of the read types comes from, as a Python expression over its source.

``S`` is the source of the object (a read row, a stored order document or a part of one,
a tuple built by a root field); ``R`` is the run (:class:`api.graphql.compiled.run.Run`),
which loads the objects a field reaches by id (``Order.customer``, ``OrderLine.product``)
and checks who may see them. Each expression gives the value exactly as the Strawberry
type would serialise it (global ids, enum names, ``isoformat()`` times), so both paths
answer the same bytes. A type or field not listed here has no plan: its documents run on
Strawberry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from api.graphql.ids import to_global_id
from domain.model import OrderStatus
from projections.base import as_utc


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    expr: str
    child: str | None = None  # the object type of the value (of each item if ``many``)
    many: bool = False


def _time(value: str) -> str:
    """A stored time as the DateTime scalar writes it (the Strawberry type parses it and
    writes ``isoformat()``). The projectors store times in that very form, UTC with
    microseconds (projections.base.iso), which is handed on as it is; anything else
    (no microseconds, another offset, older data) is parsed and written again."""
    if (
        len(value) == 32
        and value[10] == "T"
        and value[19] == "."
        and value.endswith("+00:00")
        and not value.endswith(".000000+00:00")  # isoformat() leaves zero microseconds out
    ):
        return value
    return dt.datetime.fromisoformat(value).isoformat()


def _time_or_none(value: str | None) -> str | None:
    return None if value is None else _time(value)


def _utc(value: dt.datetime) -> str:
    return as_utc(value).isoformat()


# Names the expressions use; an unknown status is a KeyError, so the Strawberry path answers.
HELPERS: dict[str, Any] = {
    "_gid": to_global_id,
    "_status": {status.value: status.name for status in OrderStatus},
    "_time": _time,
    "_time_or_none": _time_or_none,
    "_utc": _utc,
    "_max": max,
}

_PAGE_INFO = {
    "hasNextPage": Source("S[0]"),
    "hasPreviousPage": Source("S[1]"),
    "startCursor": Source("S[2]"),
    "endCursor": Source("S[3]"),
}


def _connection(edge: str) -> dict[str, Source]:
    return {"edges": Source("S[0]", edge, many=True), "pageInfo": Source("S[1]", "PageInfo")}


def _edge(node: str) -> dict[str, Source]:
    return {"cursor": Source("S[0]"), "node": Source("S[1]", node)}


TYPES: dict[str, dict[str, Source]] = {
    # A catalog_products row.
    "Product": {
        "id": Source('_gid("Product", S.product_id)'),
        "sku": Source("S.sku"),
        "name": Source("S.name"),
        "description": Source("S.description"),
        "priceCents": Source("S.price_cents"),
        "currency": Source("S.currency"),
        "stockAvailable": Source("_max(S.stock_available, 0)"),
        "inStock": Source("S.stock_available > 0"),
    },
    # A customer_profiles row.
    "Customer": {
        "id": Source('_gid("Customer", S.customer_id)'),
        "email": Source("S.email"),
        "name": Source("S.name"),
        "orderCount": Source("S.order_count"),
        "lifetimeSpendCents": Source("S.lifetime_spend_cents"),
        "registeredAt": Source("_utc(S.registered_at)"),
    },
    # An order document (projections/order_doc.py).
    "Order": {
        "id": Source('_gid("Order", S["id"])'),
        "status": Source('_status[S["status"]]'),
        "placedAt": Source('_time(S["placed_at"])'),
        "updatedAt": Source('_time(S["updated_at"])'),
        "version": Source('S["version"]'),
        "customerId": Source('_gid("Customer", S["customer_id"])'),
        "lines": Source('S["lines"]', "OrderLine", many=True),
        "itemCount": Source('S["item_count"]'),
        "totalCents": Source('S["total_cents"]'),
        "currency": Source('S["currency"]'),
        "payment": Source('S["payment"]', "Payment"),
        "shipment": Source('S["shipment"]', "Shipment"),
        "timeline": Source('S["timeline"]', "OrderStatusChange", many=True),
        "cancelReason": Source('S.get("cancel_reason")'),
        "customer": Source('R.customer(S["customer_id"])', "Customer"),
    },
    "OrderLine": {
        "sku": Source('S["sku"]'),
        "productName": Source('S["product_name"]'),
        "quantity": Source('S["quantity"]'),
        "unitPriceCents": Source('S["unit_price_cents"]'),
        "lineTotalCents": Source('S["quantity"] * S["unit_price_cents"]'),
        "product": Source('R.product(S["product_id"])', "Product"),
    },
    "Payment": {
        "status": Source('S["status"]'),
        "amountCents": Source('S["amount_cents"]'),
        "paidAt": Source('_time_or_none(S["paid_at"])'),
        "refundedAt": Source('_time_or_none(S["refunded_at"])'),
    },
    "Shipment": {
        "carrier": Source('S["carrier"]'),
        "trackingNumber": Source('S["tracking_number"]'),
        "status": Source('S["status"]'),
        "shippedAt": Source('_time_or_none(S["shipped_at"])'),
        "deliveredAt": Source('_time_or_none(S["delivered_at"])'),
    },
    "OrderStatusChange": {
        "status": Source('_status[S["status"]]'),
        "at": Source('_time(S["at"])'),
    },
    # Connections: (edges, page info); an edge: (cursor, node); page info: (has next,
    # has previous, start cursor, end cursor).
    "ProductConnection": _connection("ProductEdge"),
    "OrderConnection": _connection("OrderEdge"),
    "ProductEdge": _edge("Product"),
    "OrderEdge": _edge("Order"),
    "PageInfo": _PAGE_INFO,
    # (order count, revenue, [(status, count)], top product rows of sales_dashboard).
    "SalesDashboard": {
        "orderCount": Source("S[0]"),
        "revenueCents": Source("S[1]"),
        "ordersByStatus": Source("S[2]", "StatusCount", many=True),
        "topProducts": Source("S[3]", "ProductSales", many=True),
    },
    "StatusCount": {"status": Source("S[0]"), "count": Source("S[1]")},
    # A mutation's answer (api/graphql/compiled/commands.py): (order document or None, user
    # errors, consistency token); a user error: api.graphql.types.UserError.
    "OrderPayload": {
        "order": Source("S[0]", "Order"),
        "userErrors": Source("S[1]", "UserError", many=True),
        "consistencyToken": Source("S[2]"),
    },
    "UserError": {
        "field": Source("S.field"),
        "message": Source("S.message"),
        "code": Source("S.code"),
    },
    "ProductSales": {
        "sku": Source("S.key"),
        "name": Source("S.label or S.key"),
        "unitsSold": Source("S.tally"),
        "revenueCents": Source("S.amount_cents"),
    },
}
