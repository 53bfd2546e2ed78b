"""Order history screen: a customer's orders, newest first, filterable by status."""

from __future__ import annotations

from typing import Any

from projections.order_doc import Doc, OrderDocProjector, dumps
from projections.read_tables import order_history


def _row(doc: Doc) -> dict[str, Any]:
    return {
        "customer_id": doc["customer_id"],
        "status": doc["status"],
        "sort_key": doc["sort_key"],
        "doc": dumps(doc),
    }


projector = OrderDocProjector(name="order_history", table=order_history, row_of=_row)
