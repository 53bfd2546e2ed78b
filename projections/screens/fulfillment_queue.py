"""Fulfillment queue screen (staff): paid orders not yet shipped, oldest payment first
(``fulfillmentQueue``).

Placed orders are kept too (unqueued) so that the row is ready when payment arrives;
rows go away when the order ships or is cancelled.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.model import OrderStatus
from projections.order_doc import OrderDocProjector, dumps
from projections.reads import Doc, P, Query, fetch_all
from projections.tables import Position, metadata

# Open orders; the paid ones (paid_sort_key set) are the queue.
fulfillment_queue = sa.Table(
    "fulfillment_queue",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("paid_sort_key", Position, nullable=True),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_fulfillment_queue_paid", "paid_sort_key"),
)


# -- projector ---------------------------------------------------------------------------
def _row(doc: Doc) -> dict[str, Any] | None:
    if doc["status"] not in (OrderStatus.PLACED, OrderStatus.PAID):
        return None
    paid_key = doc["paid_position"] if doc["status"] == OrderStatus.PAID else None
    return {"paid_sort_key": paid_key, "doc": dumps(doc)}


projector = OrderDocProjector(
    name="fulfillment_queue", table=fulfillment_queue, row_of=_row, keeps_all=False
)


# -- reads -------------------------------------------------------------------------------
@functools.cache
def _fulfillment_page(after: bool) -> Query:
    t = fulfillment_queue
    query = (
        sa.select(t.c.doc)
        .where(t.c.paid_sort_key.is_not(None))
        .order_by(t.c.paid_sort_key)
        .limit(P("limit"))
    )
    if after:
        query = query.where(t.c.paid_sort_key > P("after"))
    return Query.of(query)


async def fulfillment_page(engine: AsyncEngine, first: int, after: int | None) -> list[Doc]:
    """Paid orders waiting to ship, oldest payment first."""
    rows = await fetch_all(
        engine, _fulfillment_page(after is not None), {"limit": first + 1, "after": after}
    )
    return [orjson.loads(row.doc) for row in rows]
