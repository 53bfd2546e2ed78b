"""deliverOrder: staff mark a shipped order delivered."""

from __future__ import annotations

import strawberry

from api.graphql.commands import EXPECTED_DOC
from api.graphql.context import Info
from api.graphql.payloads import OrderPayload, change_order
from domain import commands as c


@strawberry.input
class DeliverOrderInput:
    order_id: strawberry.ID
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.type
class DeliverOrderMutation:
    @strawberry.mutation(description="Staff: mark a shipped order delivered.")
    async def deliver_order(self, info: Info, input: DeliverOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await change_order(
            info, input.order_id, lambda oid: c.DeliverOrder(actor, oid, input.expected_version)
        )
