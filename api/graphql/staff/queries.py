"""Staff queries: the sales dashboard, the fulfillment queue and the projections' state."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.limits.estimates import list_field
from api.graphql.orders.queries import int_cursor, order_connection
from api.graphql.orders.types import OrderConnection, OrderStatus
from api.graphql.staff.types import ProductSales, ProjectionStatus, SalesDashboard, StatusCount
from api.graphql.types import check_first
from api.http.response_cache import mark_uncacheable
from projections.screens import fulfillment_queue, sales_dashboard

TOP_PRODUCTS = 10


@strawberry.type
class StaffQuery:
    @strawberry.field(description="Staff only.")
    async def sales_dashboard(self, info: Info) -> SalesDashboard:
        info.context.require_staff()
        figures, products = await sales_dashboard.dashboard_rows(
            info.context.services.read_engine, TOP_PRODUCTS
        )
        totals = next((row for row in figures if row.kind == "total"), None)
        counts = {row.key: row.tally for row in figures if row.kind == "status"}
        return SalesDashboard(
            order_count=totals.tally if totals else 0,
            revenue_cents=totals.amount_cents if totals else 0,
            orders_by_status=[
                StatusCount(status=status, count=counts.get(status.value, 0))
                for status in OrderStatus
            ],
            top_products=[
                ProductSales(
                    sku=row.key,
                    name=row.label or row.key,
                    units_sold=row.tally,
                    revenue_cents=row.amount_cents,
                )
                for row in products
            ],
        )

    @strawberry.field(description="Staff only: paid orders not yet shipped, oldest first.")
    async def fulfillment_queue(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> OrderConnection:
        info.context.require_staff()
        first = check_first(first, 50)
        docs = await fulfillment_queue.fulfillment_page(
            info.context.services.read_engine, first, int_cursor(after)
        )
        return order_connection(docs, first, after, "paid_position")

    @list_field(6, description="Staff only: where each projection is in the event log.")
    def projections(self, info: Info) -> list[ProjectionStatus]:
        info.context.require_staff()
        mark_uncacheable()  # the runner's state in memory, not a read table
        return [
            ProjectionStatus(
                name=s.name,
                position=s.position,
                head_position=s.head_position,
                lag=s.lag,
                lag_ms=s.lag_ms,
                state=s.state,
                dead_letters=s.dead_letters,
                leader=s.leader,
                leader_since=s.leader_since,
            )
            for s in info.context.services.runner.status()
        ]
