"""Order history screen: a customer's orders, newest first, filterable by status
(``myOrders(status)``)."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from projections.order_doc import OrderDocProjector, dumps
from projections.reads import Doc, P, Query, fetch_all
from projections.tables import Position, metadata

order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sort_key", Position, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Index("ix_order_history_customer", "customer_id", "sort_key"),
    sa.Index("ix_order_history_customer_status", "customer_id", "status", "sort_key"),
)


# -- projector ---------------------------------------------------------------------------
def _row(doc: Doc) -> dict[str, Any]:
    return {
        "customer_id": doc["customer_id"],
        "status": doc["status"],
        "sort_key": doc["sort_key"],
        "doc": dumps(doc),
    }


projector = OrderDocProjector(name="order_history", table=order_history, row_of=_row)


# -- reads -------------------------------------------------------------------------------
@functools.cache
def _history_page(status: bool, after: bool) -> Query:
    t = order_history
    query = (
        sa.select(t.c.doc)
        .where(t.c.customer_id == P("customer_id"))
        .order_by(t.c.sort_key.desc())
        .limit(P("limit"))
    )
    if status:
        query = query.where(t.c.status == P("status"))
    if after:
        query = query.where(t.c.sort_key < P("after"))
    return Query.of(query)


async def history_page(
    engine: AsyncEngine, customer_id: str, first: int, after: int | None, status: str | None
) -> list[Doc]:
    """A customer's orders, newest first."""
    query = _history_page(status is not None, after is not None)
    params = {"customer_id": customer_id, "limit": first + 1, "status": status, "after": after}
    return [orjson.loads(row.doc) for row in await fetch_all(engine, query, params)]
