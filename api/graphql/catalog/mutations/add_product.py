"""addProduct: staff add a product to the catalog."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.payloads import ProductPayload, product_payload
from domain import commands as c


@strawberry.input
class AddProductInput:
    sku: str
    name: str
    price_cents: int
    stock: int
    description: str | None = None


@strawberry.type
class AddProductMutation:
    @strawberry.mutation(description="Staff: add a product to the catalog.")
    async def add_product(self, info: Info, input: AddProductInput) -> ProductPayload:
        return await product_payload(
            info,
            c.AddProduct(
                info.context.actor,
                sku=input.sku,
                name=input.name,
                price_cents=input.price_cents,
                stock=input.stock,
                description=input.description,
            ),
        )
