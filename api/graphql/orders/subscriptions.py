"""Live order status, from the order detail read model and committed projections only."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from api.graphql.context import Info
from api.graphql.errors import ApiError
from api.graphql.ids import raw_id_of
from api.graphql.orders.types import Order, OrderEvent
from api.ws.fanout import express_lane, shared_event
from domain.model import can_see_order
from projections.screens import order_detail


@strawberry.type
class OrderSubscription:
    @strawberry.subscription(
        description='First the order as it is now (event "Snapshot"), then every change.'
    )
    async def order_status(
        self,
        info: Info,
        order_id: strawberry.ID,
        after_version: Annotated[
            int | None,
            strawberry.argument(
                description="Resume: replay every change after this version (instead of the "
                "Snapshot), then go on live."
            ),
        ] = None,
    ) -> AsyncGenerator[OrderEvent, None]:
        actor = info.context.actor
        if actor is None:
            raise ApiError("UNAUTHENTICATED", "Sign in to follow an order")
        raw_id = raw_id_of("Order", order_id)
        if raw_id is None:
            raise ApiError("NOT_FOUND", "No such order")
        services = info.context.services
        # Subscribe before reading the snapshot: whatever commits after the read is queued.
        with info.context.follow(f"order:{raw_id}") as subscription:
            docs = await order_detail.orders_by_ids(services.read_engine, [raw_id])
            doc = docs.get(raw_id)
            if doc is None or not can_see_order(actor, doc["customer_id"]):
                raise ApiError("NOT_FOUND", "No such order")
            if after_version is None:
                version = doc["version"]
                yield OrderEvent(
                    event="Snapshot",
                    version=version,
                    occurred_at=dt.datetime.fromisoformat(doc["updated_at"]),
                    order=Order.from_doc(doc),
                )
            else:
                version = max(after_version, 0)
                for change in await order_detail.changes_after(
                    services.read_engine, raw_id, version
                ):
                    version = change.version
                    yield shared_event(change)
            subscription.express = express_lane(info)
            # Only versions above what the snapshot (or the replay) covered.
            async for change in subscription.changes(after=version):
                yield shared_event(change)

    @strawberry.subscription(
        description="Every change to any of the caller's orders (staff: every order)."
    )
    async def my_orders(self, info: Info) -> AsyncGenerator[OrderEvent, None]:
        actor = info.context.actor
        if actor is None:
            raise ApiError("UNAUTHENTICATED", "Sign in to follow your orders")
        key = "all" if actor.is_staff else f"customer:{actor.id}"
        with info.context.follow(key) as subscription:
            subscription.express = express_lane(info)
            async for change in subscription.changes():
                yield shared_event(change)
