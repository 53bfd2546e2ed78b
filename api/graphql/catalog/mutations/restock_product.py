"""restockProduct: staff add stock on hand."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.payloads import ProductPayload, product_payload
from domain import commands as c


@strawberry.input
class RestockProductInput:
    sku: str
    quantity: int


@strawberry.type
class RestockProductMutation:
    @strawberry.mutation(description="Staff: add stock on hand.")
    async def restock_product(self, info: Info, input: RestockProductInput) -> ProductPayload:
        return await product_payload(
            info, c.RestockProduct(info.context.actor, sku=input.sku, quantity=input.quantity)
        )
