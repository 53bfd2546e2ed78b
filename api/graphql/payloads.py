"""The payloads several mutations share (their GraphQL names are part of the contract):
an order's for the five order mutations, a product's for the three catalog ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from api.graphql.catalog.types import Product
from api.graphql.commands import CONSISTENCY_DOC, not_found, run_command, token_of
from api.graphql.context import Info
from api.graphql.ids import raw_id_of
from api.graphql.limits.estimates import list_field
from api.graphql.orders.queries import visible_order
from api.graphql.orders.types import Order
from api.graphql.types import UserError
from domain import commands as c
from domain.bus import CommandResult


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError] = list_field(1)  # few: one per bad input field
    consistency_token: str | None = strawberry.field(default=None, description=CONSISTENCY_DOC)


async def _run(
    info: Info, command: c.Command, loader: DataLoader[str, Any]
) -> CommandResult | list[UserError]:
    """Run the command (or take what it answered on the compiled path, which handed this
    operation over after running it: api/graphql/compiled/execute.py), and forget what
    this request loaded of the entity it changed."""
    outcomes = info.context.outcomes
    result: CommandResult | list[UserError]
    if info.path.key in outcomes:
        found = outcomes.pop(info.path.key)
        if isinstance(found, Exception):
            raise found
        result = found
    else:
        result = await run_command(info.context.services, command)
    if not isinstance(result, list):
        with contextlib.suppress(KeyError):  # Strawberry raises if the key was never loaded
            loader.clear(result.entity_id)
    return result


async def product_payload(info: Info, command: c.Command) -> ProductPayload:
    result = await _run(info, command, info.context.products)
    if isinstance(result, list):
        return ProductPayload(product=None, user_errors=result)
    row = await info.context.products.load(result.entity_id)
    return ProductPayload(
        product=None if row is None else Product.from_row(row),
        user_errors=[],
        consistency_token=token_of(result),
    )


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError] = list_field(1)  # few: one per bad input field
    consistency_token: str | None = strawberry.field(default=None, description=CONSISTENCY_DOC)


async def order_payload(info: Info, command: c.Command) -> OrderPayload:
    result = await _run(info, command, info.context.orders)
    if isinstance(result, list):
        return OrderPayload(order=None, user_errors=result)
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


async def change_order(
    info: Info, global_id: str, command: Callable[[str], c.Command]
) -> OrderPayload:
    """Run the command made for the order this global id names (NOT_FOUND if none)."""
    order_id = raw_id_of("Order", global_id)
    if order_id is None:
        return OrderPayload(order=None, user_errors=not_found("orderId", "order"))
    return await order_payload(info, command(order_id))
