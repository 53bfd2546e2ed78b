"""Customer profile screen: who the customer is, how many orders, lifetime spend (``me``,
``Order.customer``).

Lifetime spend counts paid orders and takes back refunds of cancelled paid orders. A batch
is folded into per-customer deltas, then written with one statement per kind of change.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as e
from domain.events import Event
from projections.base import Handlers, OneTableProjector, OrderChange, StoredEvent, fold
from projections.reads import P, Query, Row, fetch_all, fetch_one
from projections.tables import Timestamp, metadata

customer_profiles = sa.Table(
    "customer_profiles",
    metadata,
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("order_count", sa.Integer, nullable=False),
    sa.Column("lifetime_spend_cents", sa.Integer, nullable=False),
    sa.Column("registered_at", Timestamp, nullable=False),
    sa.Index("ix_customer_profiles_email", "email"),
)


# -- projector ---------------------------------------------------------------------------
@dataclasses.dataclass
class _Pending:
    registered: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    orders: Counter[str] = dataclasses.field(default_factory=Counter)
    spend: Counter[str] = dataclasses.field(default_factory=Counter)


def _customer_registered(p: _Pending, ev: StoredEvent[e.CustomerRegistered]) -> None:
    data = ev.data
    p.registered.append(
        {
            "customer_id": data.customer_id,
            "email": data.email,
            "name": data.name,
            "order_count": 0,
            "lifetime_spend_cents": 0,
            "registered_at": ev.occurred_at,
        }
    )


def _order_placed(p: _Pending, ev: StoredEvent[e.OrderPlaced]) -> None:
    p.orders[ev.data.customer_id] += 1


def _order_paid(p: _Pending, ev: StoredEvent[e.OrderPaid]) -> None:
    p.spend[ev.data.customer_id] += ev.data.amount_cents


def _order_cancelled(p: _Pending, ev: StoredEvent[e.OrderCancelled]) -> None:
    p.spend[ev.data.customer_id] -= ev.data.refunded_cents


HANDLERS: Handlers[_Pending] = {
    e.CustomerRegistered: _customer_registered,
    e.OrderPlaced: _order_placed,
    e.OrderPaid: _order_paid,
    e.OrderCancelled: _order_cancelled,
}


@dataclasses.dataclass(frozen=True)
class CustomerProfileProjector(OneTableProjector):
    name: str = "customer_profile"
    table: sa.Table = customer_profiles

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
        p = fold(HANDLERS, _Pending(), events)
        if p.registered:
            conn.execute(self.table.insert(), p.registered)
        touched = set(p.orders) | set(p.spend)
        if touched:
            conn.execute(
                self._update,
                [{"cid": cid, "orders": p.orders[cid], "spend": p.spend[cid]} for cid in touched],
            )
        return ()


projector = CustomerProfileProjector()


# -- reads -------------------------------------------------------------------------------
_CUSTOMERS_BY_IDS = Query.of(
    sa.select(customer_profiles).where(
        customer_profiles.c.customer_id.in_(P("ids", expanding=True))
    )
)
_CUSTOMER_BY_EMAIL = Query.of(
    sa.select(customer_profiles).where(customer_profiles.c.email == P("email"))
)


async def customers_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Row]:
    rows = await fetch_all(engine, _CUSTOMERS_BY_IDS, {"ids": list(ids)})
    return {row.customer_id: row for row in rows}


async def customer_by_email(engine: AsyncEngine, email: str) -> Row | None:
    return await fetch_one(engine, _CUSTOMER_BY_EMAIL, {"email": email})
