"""Staff mutations of the catalog: addProduct, restockProduct, changeProductPrice."""

from __future__ import annotations

import contextlib

import strawberry

from api.context import Info
from api.mutations.common import CONSISTENCY_DOC, run_command, token_of
from api.types.common import UserError
from api.types.product import Product
from domain import commands as c


@strawberry.input
class AddProductInput:
    sku: str
    name: str
    price_cents: int
    stock: int
    description: str | None = None


@strawberry.input
class RestockProductInput:
    sku: str
    quantity: int


@strawberry.input
class ChangeProductPriceInput:
    sku: str
    price_cents: int


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError]
    consistency_token: str | None = strawberry.field(default=None, description=CONSISTENCY_DOC)


async def _product_payload(info: Info, command: c.Command) -> ProductPayload:
    result = await run_command(info, command)
    if isinstance(result, list):
        return ProductPayload(product=None, user_errors=result)
    with contextlib.suppress(KeyError):  # Strawberry raises if the key was never loaded
        info.context.products.clear(result.entity_id)  # this request may have loaded it
    row = await info.context.products.load(result.entity_id)
    return ProductPayload(
        product=None if row is None else Product.from_row(row),
        user_errors=[],
        consistency_token=token_of(result),
    )


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(description="Staff: add a product to the catalog.")
    async def add_product(self, info: Info, input: AddProductInput) -> ProductPayload:
        return await _product_payload(
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

    @strawberry.mutation(description="Staff: add stock on hand.")
    async def restock_product(self, info: Info, input: RestockProductInput) -> ProductPayload:
        return await _product_payload(
            info, c.RestockProduct(info.context.actor, sku=input.sku, quantity=input.quantity)
        )

    @strawberry.mutation(description="Staff: change the price of future orders.")
    async def change_product_price(
        self, info: Info, input: ChangeProductPriceInput
    ) -> ProductPayload:
        return await _product_payload(
            info,
            c.ChangeProductPrice(info.context.actor, sku=input.sku, price_cents=input.price_cents),
        )
