"""Staff screens: the sales dashboard and the projections' status."""

from __future__ import annotations

import strawberry

from api.types.order import OrderStatus


@strawberry.type
class StatusCount:
    status: OrderStatus
    count: int


@strawberry.type
class ProductSales:
    sku: str
    name: str
    units_sold: int
    revenue_cents: int


@strawberry.type
class SalesDashboard:
    order_count: int
    revenue_cents: int
    orders_by_status: list[StatusCount]
    top_products: list[ProductSales]


@strawberry.type
class ProjectionStatus:
    name: str
    position: int
    head_position: int
    lag: int
    lag_ms: float | None
    state: str
