"""Customer profile screen: who the customer is, how many orders, lifetime spend.

Lifetime spend counts paid orders and takes back refunds of cancelled paid orders.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain import events as e
from domain.events import Event
from projections.base import OneTableProjector, OrderChange, StoredEvent
from projections.read_tables import customer_profiles as t


@dataclasses.dataclass(frozen=True)
class CustomerProfileProjector(OneTableProjector):
    name: str = "customer_profile"
    table: sa.Table = t

    @functools.cached_property
    def _update(self) -> sa.Update:
        t = self.table  # built once: construction costs more than running it
        return (
            t.update()
            .where(t.c.customer_id == sa.bindparam("cid"))
            .values(
                order_count=t.c.order_count + sa.bindparam("orders"),
                lifetime_spend_cents=t.c.lifetime_spend_cents + sa.bindparam("spend"),
            )
        )

    def apply(
        self, conn: Connection, events: Sequence[StoredEvent[Event]]
    ) -> Sequence[OrderChange]:
        registered: list[dict[str, Any]] = []
        orders: Counter[str] = Counter()
        spend: Counter[str] = Counter()
        for ev in events:
            data = ev.data
            if isinstance(data, e.CustomerRegistered):
                registered.append(
                    {
                        "customer_id": data.customer_id,
                        "email": data.email,
                        "name": data.name,
                        "order_count": 0,
                        "lifetime_spend_cents": 0,
                        "registered_at": ev.occurred_at,
                    }
                )
            elif isinstance(data, e.OrderPlaced):
                orders[data.customer_id] += 1
            elif isinstance(data, e.OrderPaid):
                spend[data.customer_id] += data.amount_cents
            elif isinstance(data, e.OrderCancelled):
                spend[data.customer_id] -= data.refunded_cents
        if registered:
            conn.execute(self.table.insert(), registered)
        touched = set(orders) | set(spend)
        if touched:
            conn.execute(
                self._update,
                [{"cid": cid, "orders": orders[cid], "spend": spend[cid]} for cid in touched],
            )
        return ()


projector = CustomerProfileProjector()
