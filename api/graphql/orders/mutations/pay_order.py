"""payOrder: the customer who placed the order pays for it."""

from __future__ import annotations

import strawberry

from api.graphql.commands import EXPECTED_DOC
from api.graphql.context import Info
from api.graphql.payloads import OrderPayload, change_order
from domain import commands as c


@strawberry.input
class PayOrderInput:
    order_id: strawberry.ID
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.type
class PayOrderMutation:
    @strawberry.mutation(description="The customer who placed the order: pay for it.")
    async def pay_order(self, info: Info, input: PayOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await change_order(
            info, input.order_id, lambda oid: c.PayOrder(actor, oid, input.expected_version)
        )
