"""Catalog queries: the products, paged by name, and one product by SKU."""

from __future__ import annotations

import strawberry

from api.graphql.catalog.types import Product, ProductConnection, ProductEdge
from api.graphql.context import Info
from api.graphql.errors import ApiError
from api.graphql.ids import decode_cursor, encode_cursor
from api.graphql.types import check_first, page_info
from projections.reads import Row
from projections.screens import catalog


def product_position(after: str | None) -> tuple[str, str] | None:
    """The (name, product id) a products cursor stands for."""
    if after is None:
        return None
    name, sep, product_id = decode_cursor(after).rpartition("\x00")
    if not sep:
        raise ApiError("BAD_USER_INPUT", f"Not a valid cursor: {after!r}")
    return name, product_id


def product_cursor(row: Row) -> str:
    return encode_cursor(f"{row.name}\x00{row.product_id}")


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="The catalog, by name.")
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
        in_stock: bool | None = None,
    ) -> ProductConnection:
        first = check_first(first, 20)
        rows = await catalog.products_page(
            info.context.services.read_engine, first, product_position(after), search, in_stock
        )
        edges = [
            ProductEdge(cursor=product_cursor(row), node=Product.from_row(row))
            for row in rows[:first]
        ]
        return ProductConnection(
            edges=edges,
            page_info=page_info([edge.cursor for edge in edges], len(rows) > first, after),
        )

    @strawberry.field
    async def product(self, info: Info, sku: str) -> Product | None:
        row = await catalog.product_by_sku(info.context.services.read_engine, sku)
        return None if row is None else Product.from_row(row)
