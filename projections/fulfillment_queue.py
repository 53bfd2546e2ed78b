"""Fulfillment queue screen (staff): paid orders not yet shipped, oldest payment first.

Placed orders are kept too (unqueued) so that the row is ready when payment arrives;
rows go away when the order ships or is cancelled.
"""

from __future__ import annotations

from typing import Any

from projections.order_doc import Doc, OrderDocProjector, dumps
from projections.read_tables import fulfillment_queue


def _row(doc: Doc) -> dict[str, Any] | None:
    if doc["status"] not in ("PLACED", "PAID"):
        return None
    paid_key = doc["paid_position"] if doc["status"] == "PAID" else None
    return {"paid_sort_key": paid_key, "doc": dumps(doc)}


projector = OrderDocProjector(
    name="fulfillment_queue", table=fulfillment_queue, row_of=_row, keeps_all=False
)
