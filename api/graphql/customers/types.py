"""Customer (profile screen)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from api.graphql.ids import to_global_id
from api.graphql.types import Node
from projections.base import as_utc


@strawberry.type
class Customer(Node):
    id: strawberry.ID
    email: str
    name: str
    order_count: int
    lifetime_spend_cents: int
    registered_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> Customer:
        return cls(
            id=strawberry.ID(to_global_id("Customer", row.customer_id)),
            email=row.email,
            name=row.name,
            order_count=row.order_count,
            lifetime_spend_cents=row.lifetime_spend_cents,
            registered_at=as_utc(row.registered_at),
        )
