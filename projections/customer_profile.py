"""Customer profile screen: who the customer is, how many orders, lifetime spend."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain import events as e
from projections.base import HandlerProjector, StoredEvent
from projections.read_tables import customer_profiles as t


async def _registered(conn: AsyncConnection, ev: StoredEvent[e.CustomerRegistered]) -> None:
    d = ev.data
    await conn.execute(
        t.insert().values(
            customer_id=d.customer_id, email=d.email, name=d.name, order_count=0,
            lifetime_spend_cents=0, registered_at=ev.occurred_at,
        )
    )


async def _bump(conn: AsyncConnection, customer_id: str, **deltas: Any) -> None:
    await conn.execute(
        t.update().where(t.c.customer_id == customer_id)
        .values({name: t.c[name] + delta for name, delta in deltas.items()})
    )


async def _placed(conn: AsyncConnection, ev: StoredEvent[e.OrderPlaced]) -> None:
    await _bump(conn, ev.data.customer_id, order_count=1)


async def _paid(conn: AsyncConnection, ev: StoredEvent[e.OrderPaid]) -> None:
    await _bump(conn, ev.data.customer_id, lifetime_spend_cents=ev.data.amount_cents)


async def _cancelled(conn: AsyncConnection, ev: StoredEvent[e.OrderCancelled]) -> None:
    if ev.data.refunded_cents:
        await _bump(conn, ev.data.customer_id, lifetime_spend_cents=-ev.data.refunded_cents)


projector = HandlerProjector(
    name="customer_profile",
    tables=(t,),
    handlers={
        "CustomerRegistered": _registered,
        "OrderPlaced": _placed,
        "OrderPaid": _paid,
        "OrderCancelled": _cancelled,
    },
)
