"""shipOrder: staff ship a paid order."""

from __future__ import annotations

import strawberry

from api.graphql.commands import EXPECTED_DOC
from api.graphql.context import Info
from api.graphql.payloads import OrderPayload, change_order
from domain import commands as c


@strawberry.input
class ShipOrderInput:
    order_id: strawberry.ID
    carrier: str
    tracking_number: str
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.type
class ShipOrderMutation:
    @strawberry.mutation(description="Staff: ship a paid order.")
    async def ship_order(self, info: Info, input: ShipOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await change_order(
            info,
            input.order_id,
            lambda oid: c.ShipOrder(
                actor, oid, input.carrier, input.tracking_number, input.expected_version
            ),
        )
