"""The Relay ``node`` query: any object by its global id, seen as its own query would
show it (someone else's order or profile looks missing)."""

from __future__ import annotations

import strawberry

from api.graphql.catalog.types import Product
from api.graphql.context import Info
from api.graphql.customers.types import Customer
from api.graphql.ids import from_global_id
from api.graphql.orders.queries import visible_order
from api.graphql.types import Node


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Fetch any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, raw_id = from_global_id(id)
        if type_name == "Order":
            return await visible_order(info, raw_id)
        if type_name == "Product":
            row = await info.context.products.load(raw_id)
            return None if row is None else Product.from_row(row)
        if type_name == "Customer":
            actor = info.context.actor
            if actor is None or not (actor.is_staff or actor.id == raw_id):
                return None
            customer = await info.context.customers.load(raw_id)
            return None if customer is None else Customer.from_row(customer)
        return None
