"""Order detail screen: one order by id (``order(id)``, ``node(id)``), and every state it
went through; the source of order subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from projections.base import OrderChange, as_utc
from projections.order_doc import OrderDocProjector, dumps
from projections.reads import Doc, P, Query, fetch_all
from projections.tables import Position, Timestamp, metadata

order_detail = sa.Table(
    "order_detail",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
)

# Every state the order went through, for subscribers that reconnect
# (orderStatus(afterVersion:)): the order document right after each of its events. By
# ``position`` (the event's), processes that did not apply the change tail it to deliver
# it to their own subscribers (``engine/follow.py``); rows written before that column
# existed have none.
order_changes = sa.Table(
    "order_changes",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("position", Position, nullable=True),
    sa.Index("ix_order_changes_position", "position"),
)


# -- projector ---------------------------------------------------------------------------
def _row(doc: Doc) -> dict[str, Any]:
    return {"customer_id": doc["customer_id"], "version": doc["version"], "doc": dumps(doc)}


projector = OrderDocProjector(
    name="order_detail", table=order_detail, row_of=_row, changes_table=order_changes
)


# -- reads -------------------------------------------------------------------------------
_ORDERS_BY_IDS = Query.of(
    sa.select(order_detail.c.order_id, order_detail.c.doc).where(
        order_detail.c.order_id.in_(P("ids", expanding=True))
    )
)
_ORDER_CHANGES = Query.of(
    sa.select(order_changes)
    .where(order_changes.c.order_id == P("order_id"), order_changes.c.version > P("after"))
    .order_by(order_changes.c.version)
)


async def orders_by_ids(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Doc]:
    rows = await fetch_all(engine, _ORDERS_BY_IDS, {"ids": list(ids)})
    return {row.order_id: orjson.loads(row.doc) for row in rows}


async def changes_after(engine: AsyncEngine, order_id: str, after: int) -> list[OrderChange]:
    """The order after each of its events with a version above ``after``, in order."""
    changes = []
    for row in await fetch_all(engine, _ORDER_CHANGES, {"order_id": order_id, "after": after}):
        doc = orjson.loads(row.doc)
        changes.append(
            OrderChange(
                row.order_id,
                doc["customer_id"],
                row.version,
                row.event,
                as_utc(row.occurred_at),
                doc,
            )
        )
    return changes
