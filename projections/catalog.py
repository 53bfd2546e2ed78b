"""Catalog screen: products with price and the stock a customer can still order."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain import events as e
from projections.base import HandlerProjector, StoredEvent
from projections.read_tables import catalog_products as t


async def _added(conn: AsyncConnection, ev: StoredEvent[e.ProductAdded]) -> None:
    d = ev.data
    await conn.execute(
        t.insert().values(
            product_id=d.product_id, sku=d.sku, name=d.name, description=d.description,
            price_cents=d.price_cents, currency=d.currency, stock_available=d.stock,
            updated_at=ev.occurred_at,
        )
    )


async def _change(conn: AsyncConnection, ev: StoredEvent[Any], **values: Any) -> None:
    await conn.execute(
        t.update().where(t.c.product_id == ev.data.product_id)
        .values(updated_at=ev.occurred_at, **values)
    )


async def _restocked(conn: AsyncConnection, ev: StoredEvent[e.ProductRestocked]) -> None:
    await _change(conn, ev, stock_available=t.c.stock_available + ev.data.quantity)


async def _repriced(conn: AsyncConnection, ev: StoredEvent[e.ProductPriceChanged]) -> None:
    await _change(conn, ev, price_cents=ev.data.price_cents)


async def _move_stock(
    conn: AsyncConnection, lines: tuple[e.OrderLineData, ...], sign: int
) -> None:
    for line in lines:
        await conn.execute(
            t.update().where(t.c.product_id == line.product_id)
            .values(stock_available=t.c.stock_available + sign * line.quantity)
        )


async def _placed(conn: AsyncConnection, ev: StoredEvent[e.OrderPlaced]) -> None:
    await _move_stock(conn, ev.data.lines, -1)


async def _cancelled(conn: AsyncConnection, ev: StoredEvent[e.OrderCancelled]) -> None:
    await _move_stock(conn, ev.data.lines, +1)


projector = HandlerProjector(
    name="catalog",
    tables=(t,),
    handlers={
        "ProductAdded": _added,
        "ProductRestocked": _restocked,
        "ProductPriceChanged": _repriced,
        "OrderPlaced": _placed,
        "OrderCancelled": _cancelled,
    },
)
