"""Authorization of the order reads, in process: the schema executed with a context, on
real SQLite files, so that mutation testing (``make mutate``) sees the resolvers that
call ``can_see_order`` (the end-to-end tests run them in a server process, out of its
reach). Customers see their own orders only, by ``order``, ``node`` and ``myOrders``;
staff see every order; anonymous callers none."""

from __future__ import annotations

from typing import Any

import pytest

from api.bootstrap import Services
from api.graphql.context import Context
from api.graphql.ids import to_global_id
from api.graphql.schema import ShopSchema, build_schema
from domain import commands as c

STAFF = c.Actor("staff-authz", "staff")
ORDER = "query($id: ID!) { order(id: $id) { id status } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Order { status } } }"
MY_ORDERS = "{ myOrders(first: 10) { edges { node { id } } } }"
QUEUE = "{ fulfillmentQueue(first: 10) { edges { node { id } } } }"


async def _ok(services: Services, command: c.Command) -> str:
    result = await services.bus.execute(command)
    assert result.entity_id, result
    return result.entity_id


async def _shop(services: Services) -> tuple[c.Actor, str, c.Actor, str]:
    """Two customers with an order each (Alice's paid): (alice, her order's global id,
    bob, his)."""
    await services.runner.load_checkpoints()
    await _ok(services, c.AddProduct(STAFF, "AUTHZ-1", "Authz", 500, 10))
    alice = c.Actor(
        await _ok(services, c.RegisterCustomer(None, "a@authz.test", "Alice")), "customer"
    )
    bob = c.Actor(await _ok(services, c.RegisterCustomer(None, "b@authz.test", "Bob")), "customer")
    line = (c.LineRequest("AUTHZ-1", 1),)
    order_a = await _ok(services, c.PlaceOrder(alice, line))
    order_b = await _ok(services, c.PlaceOrder(bob, line))
    await _ok(services, c.PayOrder(alice, order_a))
    await services.runner.catch_up(timeout=10)
    return alice, to_global_id("Order", order_a), bob, to_global_id("Order", order_b)


async def _run(
    schema: ShopSchema,
    services: Services,
    actor: c.Actor | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> tuple[Any, list[str]]:
    result = await schema.execute(
        query, variable_values=variables, context_value=Context(services, actor)
    )
    codes = [str((e.extensions or {}).get("code")) for e in result.errors or ()]
    return result.data, codes


@pytest.fixture
def schema() -> ShopSchema:
    return build_schema()


async def test_order_and_node_show_an_order_to_its_customer_and_staff_only(
    services: Services, schema: ShopSchema
) -> None:
    alice, order_a, bob, order_b = await _shop(services)
    for query, field in ((ORDER, "order"), (NODE, "node")):
        data, codes = await _run(schema, services, alice, query, {"id": order_a})
        assert data[field] == {"id": order_a, "status": "PAID"}, (query, codes)
        data, codes = await _run(schema, services, STAFF, query, {"id": order_b})
        assert data[field] == {"id": order_b, "status": "PLACED"}, (query, codes)
        # Another customer's order looks exactly like a missing one; so it does to
        # anonymous callers.
        for stranger in (bob, None):
            data, codes = await _run(schema, services, stranger, query, {"id": order_a})
            assert (data, codes) == ({field: None}, []), (query, stranger)


async def test_my_orders_lists_the_callers_orders_only(
    services: Services, schema: ShopSchema
) -> None:
    alice, order_a, bob, order_b = await _shop(services)
    for actor, expected in ((alice, [order_a]), (bob, [order_b])):
        data, codes = await _run(schema, services, actor, MY_ORDERS)
        assert codes == [], codes
        assert [e["node"]["id"] for e in data["myOrders"]["edges"]] == expected
    data, codes = await _run(schema, services, None, MY_ORDERS)
    assert data is None and codes == ["UNAUTHENTICATED"], (data, codes)


async def test_the_fulfillment_queue_is_staff_only(services: Services, schema: ShopSchema) -> None:
    alice, order_a, _, _ = await _shop(services)
    data, codes = await _run(schema, services, STAFF, QUEUE)
    assert codes == [] and [e["node"]["id"] for e in data["fulfillmentQueue"]["edges"]] == [order_a]
    for actor in (alice, None):
        data, codes = await _run(schema, services, actor, QUEUE)
        assert data is None and codes in (["FORBIDDEN"], ["UNAUTHENTICATED"]), (data, codes)


async def test_a_customer_profile_by_node_only_to_its_customer_and_staff(
    services: Services, schema: ShopSchema
) -> None:
    alice, _, bob, _ = await _shop(services)
    query = "query($id: ID!) { node(id: $id) { id ... on Customer { name } } }"
    profile = to_global_id("Customer", alice.id)
    for actor in (alice, STAFF):
        data, codes = await _run(schema, services, actor, query, {"id": profile})
        assert (data, codes) == ({"node": {"id": profile, "name": "Alice"}}, []), actor
    for stranger in (bob, None):
        data, codes = await _run(schema, services, stranger, query, {"id": profile})
        assert (data, codes) == ({"node": None}, []), stranger
