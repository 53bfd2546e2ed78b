"""Customer queries: the signed-in customer's profile."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.customers.types import Customer


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="The signed-in customer's profile (null if anonymous).")
    async def me(self, info: Info) -> Customer | None:
        actor = info.context.actor
        if actor is None or actor.is_staff:
            return None
        row = await info.context.customers.load(actor.id)
        return None if row is None else Customer.from_row(row)
