"""The read database's whole schema, for Alembic and tests: ``metadata`` with the
engine's tables and every registered screen's (each defined in its screen module).

Read models are one table per screen, shaped so each screen is one indexed read, no joins;
order screens store the order as a JSON document (``order_doc.py``) next to the columns
they filter and sort on.
"""

from __future__ import annotations

from projections.registry import PROJECTORS
from projections.screens.catalog import catalog_products
from projections.screens.customer_profile import customer_profiles
from projections.screens.fulfillment_queue import fulfillment_queue
from projections.screens.order_detail import order_changes, order_detail
from projections.screens.order_history import order_history
from projections.screens.sales_dashboard import sales_dashboard
from projections.tables import (
    metadata,
    projection_checkpoints,
    projection_dead_letters,
    projection_leader,
)

# Every registered projector's tables are on ``metadata`` (a screen defines its table on it).
assert all(t.metadata is metadata for p in PROJECTORS.values() for t in p.tables)

__all__ = [
    "catalog_products",
    "customer_profiles",
    "fulfillment_queue",
    "metadata",
    "order_changes",
    "order_detail",
    "order_history",
    "projection_checkpoints",
    "projection_dead_letters",
    "projection_leader",
    "sales_dashboard",
]
