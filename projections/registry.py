"""The projectors, by name, in the order the runner applies them: the order detail
screen first, since its commit is what live subscriptions are sent (the others follow
within the same step). A new screen is one line here."""

from __future__ import annotations

from projections.base import Projector
from projections.screens import (
    catalog,
    customer_profile,
    fulfillment_queue,
    order_detail,
    order_history,
    sales_dashboard,
)

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
