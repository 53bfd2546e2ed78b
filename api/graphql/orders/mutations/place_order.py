"""placeOrder: a customer orders products; stock is reserved at once."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.payloads import OrderPayload, order_payload
from domain import commands as c


@strawberry.input
class OrderLineInput:
    sku: str
    quantity: int


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput]
    idempotency_key: str | None = None


@strawberry.type
class PlaceOrderMutation:
    @strawberry.mutation(description="Customer: order products; stock is reserved at once.")
    async def place_order(self, info: Info, input: PlaceOrderInput) -> OrderPayload:
        lines = tuple(c.LineRequest(line.sku, line.quantity) for line in input.lines)
        return await order_payload(
            info, c.PlaceOrder(info.context.actor, lines, input.idempotency_key)
        )
