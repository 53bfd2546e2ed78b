"""Order detail screen: one order by id, and every state it went through; the source of
order subscriptions."""

from __future__ import annotations

from typing import Any

from projections.order_doc import Doc, OrderDocProjector, dumps
from projections.read_tables import order_changes, order_detail


def _row(doc: Doc) -> dict[str, Any]:
    return {"customer_id": doc["customer_id"], "version": doc["version"], "doc": dumps(doc)}


projector = OrderDocProjector(
    name="order_detail", table=order_detail, row_of=_row, changes_table=order_changes
)
