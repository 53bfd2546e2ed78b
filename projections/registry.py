"""The projectors, by name, in the order the runner applies them: the order detail
screen first, since its commit is what live subscriptions are sent (the others follow
within the same step)."""

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
        order_detail.projector,
        catalog.projector,
        order_history.projector,
        customer_profile.projector,
        sales_dashboard.projector,
        fulfillment_queue.projector,
    )
}
