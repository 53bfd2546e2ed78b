"""Order and what hangs off it, built from the order document of the read model."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from api.graphql.catalog.types import Product
from api.graphql.context import Info
from api.graphql.customers.types import Customer
from api.graphql.ids import to_global_id
from api.graphql.limits.estimates import list_field
from api.graphql.types import Node, PageInfo
from domain.model import OrderStatus as OrderStatus
from domain.model import can_see_order

# The schema's OrderStatus is the domain's enum, given its GraphQL definition here.
strawberry.enum(OrderStatus)


def _time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


@strawberry.type
class OrderLine:
    sku: str
    product_name: str
    quantity: int
    unit_price_cents: int
    product_id: strawberry.Private[str]

    @strawberry.field
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @strawberry.field(description="The product as it is in the catalog now.")
    async def product(self, info: Info) -> Product | None:
        row = await info.context.products.load(self.product_id)
        return None if row is None else Product.from_row(row)


@strawberry.type
class Payment:
    status: str
    amount_cents: int
    paid_at: dt.datetime | None
    refunded_at: dt.datetime | None


@strawberry.type
class Shipment:
    carrier: str
    tracking_number: str
    status: str
    shipped_at: dt.datetime | None
    delivered_at: dt.datetime | None


@strawberry.type
class OrderStatusChange:
    status: OrderStatus
    at: dt.datetime


@strawberry.type
class Order(Node):
    id: strawberry.ID
    status: OrderStatus
    placed_at: dt.datetime
    updated_at: dt.datetime
    version: int
    customer_id: strawberry.ID
    lines: list[OrderLine] = list_field(5)
    item_count: int
    total_cents: int
    currency: str
    payment: Payment | None
    shipment: Shipment | None
    timeline: list[OrderStatusChange] = list_field(5)
    cancel_reason: str | None
    raw_customer_id: strawberry.Private[str]

    @strawberry.field
    async def customer(self, info: Info) -> Customer | None:
        if not can_see_order(info.context.actor, self.raw_customer_id):
            return None
        row = await info.context.customers.load(self.raw_customer_id)
        return None if row is None else Customer.from_row(row)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Order:
        payment, shipment = doc["payment"], doc["shipment"]
        return cls(
            id=strawberry.ID(to_global_id("Order", doc["id"])),
            status=OrderStatus(doc["status"]),
            placed_at=dt.datetime.fromisoformat(doc["placed_at"]),
            updated_at=dt.datetime.fromisoformat(doc["updated_at"]),
            version=doc["version"],
            customer_id=strawberry.ID(to_global_id("Customer", doc["customer_id"])),
            raw_customer_id=doc["customer_id"],
            lines=[
                OrderLine(
                    sku=line["sku"],
                    product_name=line["product_name"],
                    quantity=line["quantity"],
                    unit_price_cents=line["unit_price_cents"],
                    product_id=line["product_id"],
                )
                for line in doc["lines"]
            ],
            item_count=doc["item_count"],
            total_cents=doc["total_cents"],
            currency=doc["currency"],
            payment=None
            if payment is None
            else Payment(
                status=payment["status"],
                amount_cents=payment["amount_cents"],
                paid_at=_time(payment["paid_at"]),
                refunded_at=_time(payment["refunded_at"]),
            ),
            shipment=None
            if shipment is None
            else Shipment(
                carrier=shipment["carrier"],
                tracking_number=shipment["tracking_number"],
                status=shipment["status"],
                shipped_at=_time(shipment["shipped_at"]),
                delivered_at=_time(shipment["delivered_at"]),
            ),
            timeline=[
                OrderStatusChange(
                    status=OrderStatus(step["status"]), at=dt.datetime.fromisoformat(step["at"])
                )
                for step in doc["timeline"]
            ],
            cancel_reason=doc.get("cancel_reason"),
        )


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


@strawberry.type(description="A change to an order, as pushed to subscribers.")
class OrderEvent:
    event: str = strawberry.field(
        description='"Snapshot" for the first message, else the domain event\'s name.'
    )
    version: int
    occurred_at: dt.datetime
    order: Order
