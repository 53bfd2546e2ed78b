"""The compiled read path answers byte for byte as the Strawberry executor: every query of
the contract (the README tour, the TypeScript client's operations, the bench's) and
random documents from the schema, as anonymous, customer, other customer and staff,
errors included. See compiled_support.py for how both answers come from one server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationType
from hypothesis import HealthCheck, given, settings

from bench import screens
from tests.conformance.compiled_documents import Pools, documents
from tests.conformance.compiled_support import Shop, client_operations, seeded_shop
from tests.conftest import ROOT

ACTORS = ("anonymous", "customer", "other customer", "staff")
# The tour's last query, written inline in the README.
TOUR_INLINE = (
    "{ me { name orderCount lifetimeSpendCents } myOrders(first: 10) { edges { node "
    "{ status totalCents shipment { trackingNumber } } } } }"
)

VISIBILITY = (
    "query Visible($id: ID!) { node(id: $id) { __typename id ... on Customer { email name } "
    "... on Order { status customer { email } } ... on Product { sku } } "
    "order(id: $id) { id customerId customer { id name } } }"
)


@pytest.fixture(scope="module")
def shop(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    yield from seeded_shop(template_dir, tmp_path_factory.mktemp("compiled"))


def _tour() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    assert TOUR_INLINE in readme
    blocks = re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)
    return [block for block in blocks if block.lstrip().startswith("{")] + [TOUR_INLINE]


def _client_operations() -> list[tuple[str, str]]:
    """(document text, operation name) of every query of the TypeScript client."""
    return [
        (text, operation.name.value)
        for text, operation in client_operations(OperationType.QUERY)
        if operation.name is not None
    ]


def _contract(shop: Shop) -> list[dict[str, Any]]:
    order, other_order = shop.order_ids[0], shop.order_ids[-1]
    bodies: list[dict[str, Any]] = [{"query": query} for query in _tour()]
    variables: dict[str, list[dict[str, Any]]] = {
        "Catalog": [{}, {"first": 2}, {"search": "Product 1", "inStock": True}, {"first": 101}],
        "Product": [{"sku": shop.skus[0]}, {"sku": "NOPE"}],
        "MyOrders": [{}, {"first": 2, "status": "DELIVERED"}, {"after": "garbage"}],
        "OrderDetail": [{"id": order}, {"id": other_order}, {"id": shop.product_ids[0]}],
        "FulfillmentQueue": [{}, {"first": 1}],
    }
    for text, name in _client_operations():
        for values in variables.get(name, [{}]):
            bodies.append({"query": text, "operationName": name, "variables": values})
    bodies += [
        {"query": screens.MY_ORDERS, "variables": {"first": screens.PAGE}},
        {"query": screens.PRODUCT, "variables": {"sku": shop.skus[1]}},
        {"query": screens.MY_ORDERS_FLAT, "variables": {"first": screens.PAGE}},
        {"query": screens.PRODUCTS, "variables": {"first": screens.PAGE}},
        {"query": screens.ORDER, "variables": {"id": order}},
    ]
    # Authorization: everyone's objects, asked for by everyone.
    for id_ in [*shop.order_ids, *shop.customer_ids, *shop.product_ids]:
        bodies.append({"query": VISIBILITY, "variables": {"id": id_}})
    bodies.append({"query": "query B($id: ID!) { node(id: $id) { id } }", "variables": {"id": "?"}})
    return bodies


def test_contract_queries_answer_the_same_bytes_on_both_paths(shop: Shop) -> None:
    compiled = total = 0
    for body in _contract(shop):
        for actor in ACTORS:
            response, took_compiled = shop.both(body, shop.tokens[actor])
            assert response.status_code == 200
            total += 1
            compiled += took_compiled
            if "projections" not in body["query"]:
                assert took_compiled, f"{actor}: {body} fell back"
    assert compiled > total * 3 // 4


def test_random_documents_answer_the_same_bytes_on_both_paths(shop: Shop) -> None:
    pools = Pools(shop.order_ids, shop.product_ids, shop.customer_ids, shop.skus)
    taken = {"compiled": 0, "all": 0}
    before = shop.counts().get("compiled", 0)

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=documents(pools))
    def check(body: dict[str, Any]) -> None:
        for actor in ACTORS:
            shop.same(body, shop.tokens[actor])
            taken["all"] += 1

    check()
    # Counted once for the whole run (asking /metrics around each request doubled the
    # requests): compiled answers among the second requests of each pair.
    taken["compiled"] = int(shop.counts().get("compiled", 0) - before)
    # The documents must exercise the compiled path, not only the fallback.
    assert taken["compiled"] > taken["all"] // 3, taken
