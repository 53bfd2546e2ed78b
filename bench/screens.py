"""What the measured screens look like: the GraphQL documents the bench sends, and the
same answers built by hand from the read tables (the plain-route baseline) or from the
write model (the join baseline of the order history screen)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

Json = dict[str, Any]

# The order history screen: a customer's newest orders with their lines, payment,
# shipment and timeline (what API.md says the screen needs, without any join).
ORDER_FIELDS = """id status placedAt updatedAt totalCents currency itemCount
      lines { sku productName quantity unitPriceCents lineTotalCents }
      payment { status amountCents }
      shipment { carrier trackingNumber status }
      timeline { status at }"""
MY_ORDERS = (
    "query MyOrders($first: Int!) { myOrders(first: $first) { edges { cursor node { "
    + ORDER_FIELDS
    + " } } pageInfo { hasNextPage endCursor } } }"
)
PRODUCT = (
    "query Product($sku: String!) { product(sku: $sku) "
    "{ id sku name description priceCents currency stockAvailable inStock } }"
)
# The same screen with 9 flat fields per order (no lines, payment, shipment, timeline).
FLAT_FIELDS = "id status placedAt updatedAt version itemCount totalCents currency customerId"
MY_ORDERS_FLAT = (
    "query MyOrdersFlat($first: Int!) { myOrders(first: $first) { edges { cursor node { "
    + FLAT_FIELDS
    + " } } pageInfo { hasNextPage endCursor } } }"
)
PRODUCT_FIELDS = "id sku name description priceCents currency stockAvailable inStock"
# The catalog screen: one page of products.
PRODUCTS = (
    "query Products($first: Int!) { products(first: $first) { edges { cursor node { "
    + PRODUCT_FIELDS
    + " } } pageInfo { hasNextPage endCursor } } }"
)
# The order detail screen.
ORDER = "query Order($id: ID!) { order(id: $id) { " + ORDER_FIELDS + " } }"
PLACE_ORDER = (
    "mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { "
    "order { id status totalCents itemCount lines { sku productName quantity unitPriceCents } } "
    "userErrors { field message code } } }"
)
MY_ORDERS_SUBSCRIPTION = (
    "subscription { myOrders { event version occurredAt order { id status totalCents } } }"
)
PAGE = 20


def body(query: str, variables: Mapping[str, Any]) -> str:
    return orjson.dumps({"query": query, "variables": variables}).decode()


def global_id(type_name: str, raw_id: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode().rstrip("=")


def cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def order_node(doc: Mapping[str, Any]) -> Json:
    """One order of the history screen, from its read-model document (whose times are
    stored as the GraphQL DateTime scalar writes them)."""
    payment, shipment = doc["payment"], doc["shipment"]
    return {
        "id": global_id("Order", doc["id"]),
        "status": doc["status"],
        "placedAt": doc["placed_at"],
        "updatedAt": doc["updated_at"],
        "totalCents": doc["total_cents"],
        "currency": doc["currency"],
        "itemCount": doc["item_count"],
        "lines": [
            {
                "sku": line["sku"],
                "productName": line["product_name"],
                "quantity": line["quantity"],
                "unitPriceCents": line["unit_price_cents"],
                "lineTotalCents": line["quantity"] * line["unit_price_cents"],
            }
            for line in doc["lines"]
        ],
        "payment": None
        if payment is None
        else {"status": payment["status"], "amountCents": payment["amount_cents"]},
        "shipment": None
        if shipment is None
        else {
            "carrier": shipment["carrier"],
            "trackingNumber": shipment["tracking_number"],
            "status": shipment["status"],
        },
        "timeline": [{"status": step["status"], "at": step["at"]} for step in doc["timeline"]],
    }


def my_orders_data(docs: Sequence[Mapping[str, Any]], first: int) -> Json:
    """``data`` of the MyOrders query, from up to ``first + 1`` history documents."""
    edges = [
        {"cursor": cursor(str(doc["sort_key"])), "node": order_node(doc)} for doc in docs[:first]
    ]
    return {
        "myOrders": {
            "edges": edges,
            "pageInfo": {
                "hasNextPage": len(docs) > first,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }
    }


def flat_order_node(doc: Mapping[str, Any]) -> Json:
    """One order of MY_ORDERS_FLAT."""
    return {
        "id": global_id("Order", doc["id"]),
        "status": doc["status"],
        "placedAt": doc["placed_at"],
        "updatedAt": doc["updated_at"],
        "version": doc["version"],
        "itemCount": doc["item_count"],
        "totalCents": doc["total_cents"],
        "currency": doc["currency"],
        "customerId": global_id("Customer", doc["customer_id"]),
    }


def my_orders_flat_data(docs: Sequence[Mapping[str, Any]], first: int) -> Json:
    """``data`` of MY_ORDERS_FLAT, from up to ``first + 1`` history documents."""
    edges = [
        {"cursor": cursor(str(doc["sort_key"])), "node": flat_order_node(doc)}
        for doc in docs[:first]
    ]
    return {"myOrders": {"edges": edges, "pageInfo": _page_info(edges, len(docs) > first)}}


def order_data(doc: Mapping[str, Any] | None) -> Json:
    """``data`` of the ORDER query, from an order_detail document."""
    return {"order": None if doc is None else order_node(doc)}


def product_node(row: Mapping[str, Any]) -> Json:
    stock = max(row["stock_available"], 0)
    return {
        "id": global_id("Product", row["product_id"]),
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "priceCents": row["price_cents"],
        "currency": row["currency"],
        "stockAvailable": stock,
        "inStock": stock > 0,
    }


def product_data(row: Mapping[str, Any] | None) -> Json:
    """``data`` of the Product query, from a catalog_products row."""
    return {"product": None if row is None else product_node(row)}


def products_data(rows: Sequence[Mapping[str, Any]], first: int) -> Json:
    """``data`` of the PRODUCTS query, from up to ``first + 1`` catalog rows by name."""
    edges = [
        {"cursor": cursor(f"{row['name']}\x00{row['product_id']}"), "node": product_node(row)}
        for row in rows[:first]
    ]
    return {"products": {"edges": edges, "pageInfo": _page_info(edges, len(rows) > first)}}


def _page_info(edges: Sequence[Json], has_next: bool) -> Json:
    return {"hasNextPage": has_next, "endCursor": edges[-1]["cursor"] if edges else None}
