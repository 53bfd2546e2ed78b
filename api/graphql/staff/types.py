"""Staff screens: the sales dashboard and the projections' status."""

from __future__ import annotations

import datetime as dt

import strawberry

from api.graphql.context import Info
from api.graphql.limits.estimates import list_field
from api.graphql.orders.types import OrderStatus
from api.graphql.types import check_first
from projections.base import as_utc
from projections.engine.dead_letters import parked_page


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
    orders_by_status: list[StatusCount] = list_field(5)
    top_products: list[ProductSales] = list_field(10)


@strawberry.type(description="An event a projector could not apply, parked with its error.")
class ParkedEvent:
    position: int
    stream_id: str
    event_type: str
    error: str
    parked_at: dt.datetime


@strawberry.type
class ProjectionStatus:
    name: str
    position: int
    head_position: int
    lag: int
    lag_ms: float | None
    state: str
    dead_letters: int = strawberry.field(description="How many events are parked.")
    leader: str | None = strawberry.field(
        default=None,
        description="The process that applies events to the projections now "
        "(host:pid:id), as last known by this server; null if none is recorded.",
    )
    leader_since: dt.datetime | None = strawberry.field(
        default=None, description="Since when that process leads."
    )

    @strawberry.field(description="The parked events, oldest first.")
    async def parked_events(self, info: Info, first: int = 20) -> list[ParkedEvent]:
        rows = await parked_page(
            info.context.services.read_engine, self.name, check_first(first, 20)
        )
        return [
            ParkedEvent(
                position=row.position,
                stream_id=row.stream_id,
                event_type=row.event_type,
                error=row.error,
                parked_at=as_utc(row.parked_at),
            )
            for row in rows
        ]
