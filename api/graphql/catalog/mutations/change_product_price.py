"""changeProductPrice: staff change the price of future orders."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.payloads import ProductPayload, product_payload
from domain import commands as c


@strawberry.input
class ChangeProductPriceInput:
    sku: str
    price_cents: int


@strawberry.type
class ChangeProductPriceMutation:
    @strawberry.mutation(description="Staff: change the price of future orders.")
    async def change_product_price(
        self, info: Info, input: ChangeProductPriceInput
    ) -> ProductPayload:
        return await product_payload(
            info,
            c.ChangeProductPrice(info.context.actor, sku=input.sku, price_cents=input.price_cents),
        )
