"""The mutation root fields a plan can run: the five order mutations. Each makes the
command its Strawberry resolver makes (api/graphql/orders/mutations/), runs it on the
command bus the same way (api/graphql/commands.py: a refusal is a user error; once
accepted, the read models are awaited), and returns the source of ``OrderPayload``:
(the order document if the caller may see it, the user errors, the consistency token).

Unlike a query, a mutation handed to Strawberry after its command has run must not run
it again: each command's answer (result, user errors, or the exception it raised) is kept
by response key in ``Run.outcomes``, and the Strawberry resolver takes it from there
(api/graphql/payloads.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.graphql.commands import not_found, run_command, token_of
from api.graphql.ids import raw_id_of
from api.graphql.types import UserError
from domain import commands as c
from domain.model import can_see_order
from projections.screens import order_detail

from .roots import Args, Resolve
from .run import Run

# The source of an OrderPayload: (order document or None, user errors, consistency token).
Payload = tuple[dict[str, Any] | None, list[UserError], str | None]


async def _order_payload(run: Run, command: c.Command) -> Payload:
    services = run.services
    assert services is not None, "a mutation's run has the services"
    run.sent = True
    try:
        result = await run_command(services, command)
    except Exception as error:  # answered by Strawberry as it would have (see Run.outcomes)
        run.outcomes[run.key] = error
        raise
    run.outcomes[run.key] = result
    if isinstance(result, list):
        return None, result, None
    doc: Any = None
    if result.position is not None:
        # As order_payload: the document the order detail projection has just committed.
        doc = services.runner.committed_order(result.entity_id, result.position)
    if doc is None:
        doc = (await order_detail.orders_by_ids(run.engine, [result.entity_id])).get(
            result.entity_id
        )
    if doc is not None and not can_see_order(run.actor, doc["customer_id"]):
        doc = None  # someone else's order looks exactly like a missing one
    return doc, [], token_of(result)


async def place_order(run: Run, args: Args) -> Payload:
    data = args["input"]
    lines = tuple(c.LineRequest(line["sku"], line["quantity"]) for line in data["lines"])
    return await _order_payload(run, c.PlaceOrder(run.actor, lines, data.get("idempotencyKey")))


def _change_order(make: Callable[[Run, dict[str, Any], str], c.Command]) -> Resolve:
    """The resolver of a mutation of the order its input's ``orderId`` names."""

    async def resolve(run: Run, args: Args) -> Payload:
        data = args["input"]
        order_id = raw_id_of("Order", data["orderId"])
        if order_id is None:
            return None, not_found("orderId", "order"), None
        return await _order_payload(run, make(run, data, order_id))

    return resolve


COMMAND_ROOTS: dict[str, tuple[Resolve, str]] = {
    "placeOrder": (place_order, "OrderPayload"),
    "payOrder": (
        _change_order(lambda r, d, oid: c.PayOrder(r.actor, oid, d.get("expectedVersion"))),
        "OrderPayload",
    ),
    "cancelOrder": (
        _change_order(
            lambda r, d, oid: c.CancelOrder(r.actor, oid, d.get("reason"), d.get("expectedVersion"))
        ),
        "OrderPayload",
    ),
    "shipOrder": (
        _change_order(
            lambda r, d, oid: c.ShipOrder(
                r.actor, oid, d["carrier"], d["trackingNumber"], d.get("expectedVersion")
            )
        ),
        "OrderPayload",
    ),
    "deliverOrder": (
        _change_order(lambda r, d, oid: c.DeliverOrder(r.actor, oid, d.get("expectedVersion"))),
        "OrderPayload",
    ),
}
