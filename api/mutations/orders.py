"""Order mutations: placeOrder (customer), payOrder (owner), cancelOrder (owner or staff),
shipOrder and deliverOrder (staff)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import strawberry

from api.context import Info
from api.ids import raw_id_of
from api.mutations.common import CONSISTENCY_DOC, not_found, run_command, token_of
from api.queries import visible_order
from api.types.common import UserError
from api.types.order import Order
from domain import commands as c

EXPECTED_DOC = "Refuse (userError VERSION_CONFLICT) unless the order is still at this version."


@strawberry.input
class OrderLineInput:
    sku: str
    quantity: int


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput]
    idempotency_key: str | None = None


@strawberry.input
class PayOrderInput:
    order_id: strawberry.ID
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID
    reason: str | None = None
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.input
class ShipOrderInput:
    order_id: strawberry.ID
    carrier: str
    tracking_number: str
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.input
class DeliverOrderInput:
    order_id: strawberry.ID
    expected_version: int | None = strawberry.field(default=None, description=EXPECTED_DOC)


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]
    consistency_token: str | None = strawberry.field(default=None, description=CONSISTENCY_DOC)


async def _order_payload(info: Info, command: c.Command) -> OrderPayload:
    result = await run_command(info, command)
    if isinstance(result, list):
        return OrderPayload(order=None, user_errors=result)
    with contextlib.suppress(KeyError):  # Strawberry raises if the key was never loaded
        info.context.orders.clear(result.entity_id)  # this request may have loaded it
    if result.position is not None:
        # The projections have reached the command's events (run_command waited): the
        # order detail document they committed is what its row holds now.
        doc = info.context.services.runner.committed_order(result.entity_id, result.position)
        if doc is not None:
            info.context.orders.prime(result.entity_id, dict(doc))
    return OrderPayload(
        order=await visible_order(info, result.entity_id),
        user_errors=[],
        consistency_token=token_of(result),
    )


async def _change_order(
    info: Info, global_id: str, command: Callable[[str], c.Command]
) -> OrderPayload:
    order_id = raw_id_of("Order", global_id)
    if order_id is None:
        return OrderPayload(order=None, user_errors=not_found("orderId", "order"))
    return await _order_payload(info, command(order_id))


@strawberry.type
class OrderMutations:
    @strawberry.mutation(description="Customer: order products; stock is reserved at once.")
    async def place_order(self, info: Info, input: PlaceOrderInput) -> OrderPayload:
        lines = tuple(c.LineRequest(line.sku, line.quantity) for line in input.lines)
        return await _order_payload(
            info, c.PlaceOrder(info.context.actor, lines, input.idempotency_key)
        )

    @strawberry.mutation(description="The customer who placed the order: pay for it.")
    async def pay_order(self, info: Info, input: PayOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await _change_order(
            info, input.order_id, lambda oid: c.PayOrder(actor, oid, input.expected_version)
        )

    @strawberry.mutation(
        description="Owner or staff, before shipping: stock is released, payment refunded."
    )
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await _change_order(
            info,
            input.order_id,
            lambda oid: c.CancelOrder(actor, oid, input.reason, input.expected_version),
        )

    @strawberry.mutation(description="Staff: ship a paid order.")
    async def ship_order(self, info: Info, input: ShipOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await _change_order(
            info,
            input.order_id,
            lambda oid: c.ShipOrder(
                actor, oid, input.carrier, input.tracking_number, input.expected_version
            ),
        )

    @strawberry.mutation(description="Staff: mark a shipped order delivered.")
    async def deliver_order(self, info: Info, input: DeliverOrderInput) -> OrderPayload:
        actor = info.context.actor
        return await _change_order(
            info, input.order_id, lambda oid: c.DeliverOrder(actor, oid, input.expected_version)
        )
