"""The projectors, by name, in the order the runner applies them."""

from __future__ import annotations

from projections import (
    catalog,
    customer_profile,
    fulfillment_queue,
    order_detail,
    order_history,
    sales_dashboard,
)
from projections.base import Projector

PROJECTORS: dict[str, Projector] = {
    p.name: p
    for p in (
        catalog.projector,
        order_history.projector,
        order_detail.projector,
        customer_profile.projector,
        sales_dashboard.projector,
        fulfillment_queue.projector,
    )
}
