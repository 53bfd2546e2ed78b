"""Product (catalog screen) and its connection."""

from __future__ import annotations

from typing import Any

import strawberry

from api.graphql.ids import to_global_id
from api.graphql.types import Node, PageInfo


@strawberry.type
class Product(Node):
    id: strawberry.ID
    sku: str
    name: str
    description: str | None
    price_cents: int
    currency: str
    stock_available: int

    @strawberry.field
    def in_stock(self) -> bool:
        return self.stock_available > 0

    @classmethod
    def from_row(cls, row: Any) -> Product:
        return cls(
            id=strawberry.ID(to_global_id("Product", row.product_id)),
            sku=row.sku,
            name=row.name,
            description=row.description,
            price_cents=row.price_cents,
            currency=row.currency,
            stock_available=max(row.stock_available, 0),
        )


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
