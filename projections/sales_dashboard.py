"""Sales dashboard screen (staff): orders, net revenue, orders by status, top products.

Revenue counts when an order is paid and is taken back when a paid order is cancelled.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from domain import events as e
from projections.base import HandlerProjector, StoredEvent
from projections.read_tables import sales_dashboard as t


async def bump(
    conn: AsyncConnection, kind: str, key: str, count: int, amount: int = 0,
    label: str | None = None,
) -> None:
    where = (t.c.kind == kind) & (t.c.key == key)
    updated = await conn.execute(
        t.update().where(where)
        .values(count=t.c.count + count, amount_cents=t.c.amount_cents + amount)
    )
    if updated.rowcount == 0:
        await conn.execute(
            t.insert().values(kind=kind, key=key, label=label, count=count, amount_cents=amount)
        )


async def _move(conn: AsyncConnection, old: str, new: str) -> None:
    await bump(conn, "status", old, -1)
    await bump(conn, "status", new, +1)


async def _products(
    conn: AsyncConnection, lines: tuple[e.OrderLineData, ...], sign: int
) -> None:
    for line in lines:
        await bump(
            conn, "product", line.sku, sign * line.quantity,
            sign * line.quantity * line.unit_price_cents, label=line.product_name,
        )


async def _placed(conn: AsyncConnection, ev: StoredEvent[e.OrderPlaced]) -> None:
    await bump(conn, "total", "all", +1)
    await bump(conn, "status", "PLACED", +1)


async def _paid(conn: AsyncConnection, ev: StoredEvent[e.OrderPaid]) -> None:
    await _move(conn, "PLACED", "PAID")
    await bump(conn, "total", "all", 0, ev.data.amount_cents)
    await _products(conn, ev.data.lines, +1)


async def _cancelled(conn: AsyncConnection, ev: StoredEvent[e.OrderCancelled]) -> None:
    await _move(conn, ev.data.previous_status, "CANCELLED")
    if ev.data.previous_status == "PAID":
        await bump(conn, "total", "all", 0, -ev.data.refunded_cents)
        await _products(conn, ev.data.lines, -1)


async def _shipped(conn: AsyncConnection, ev: StoredEvent[e.OrderShipped]) -> None:
    await _move(conn, "PAID", "SHIPPED")


async def _delivered(conn: AsyncConnection, ev: StoredEvent[e.OrderDelivered]) -> None:
    await _move(conn, "SHIPPED", "DELIVERED")


projector = HandlerProjector(
    name="sales_dashboard",
    tables=(t,),
    handlers={
        "OrderPlaced": _placed,
        "OrderPaid": _paid,
        "OrderCancelled": _cancelled,
        "OrderShipped": _shipped,
        "OrderDelivered": _delivered,
    },
)
