"""cancelOrder: the owner or staff, before shipping; stock is released, payment refunded."""

from __future__ import annotations

import strawberry

from api.graphql.commands import EXPECTED_DOC
from api.graphql.context import Info
from api.graphql.payloads import OrderPayload, change_order
from domain import commands as c


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID
    reason: str | None = None
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.type
class CancelOrderMutation:
    @strawberry.mutation(
        description="Owner or staff, before shipping: stock is released, payment refunded."
    )
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await change_order(
            info,
            input.order_id,
            lambda oid: c.CancelOrder(actor, oid, input.reason, input.expected_version),
        )
