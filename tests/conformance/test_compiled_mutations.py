"""The order mutations on the compiled path (api/graphql/compiled/commands.py) answer as
the Strawberry executor does, and run their command once.

A mutation changes the shop, so the two paths cannot simply be asked the same thing twice
(compiled_support.Shop.same does that for queries). Instead:

* placeOrder with an idempotency key: one path places the order, the other replays the
  key and gets the same order back: the two answers must be the same bytes, whichever
  path went first;
* refusals change nothing (user errors, errors of bad input): both paths are asked the
  same thing, same bytes;
* payOrder, cancelOrder, shipOrder and deliverOrder: twin orders (same lines, same
  customer) are moved through the same steps, one on each path; the answers must be the
  same bytes once each order's own id, times and consistency token are masked.

Every document here must take the compiled path (counted by
``shopfront_graphql_mutations_total``), as anonymous, customer, other customer and staff.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import FieldNode, OperationType

from bench import screens
from tests.conformance.compiled_support import Shop, client_operations, seeded_shop

pytestmark = pytest.mark.timeout(240)

ORDER = """fragment Full on Order {
  __typename id status placedAt updatedAt version customerId itemCount totalCents currency
  cancelReason lines { sku productName quantity unitPriceCents lineTotalCents
    product { id sku name stockAvailable inStock } }
  payment { status amountCents paidAt refundedAt }
  shipment { carrier trackingNumber status shippedAt deliveredAt }
  timeline { status at } customer { id name email orderCount }
}"""
PLACE = (
    "mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { __typename "
    "order { ...Full } userErrors { field message code } consistencyToken } } " + ORDER
)


def _client_mutations() -> dict[str, tuple[str, str]]:
    """The TypeScript client's mutations: field name -> (document, operation name)."""
    found = {}
    for text, operation in client_operations(OperationType.MUTATION):
        field = operation.selection_set.selections[0]
        assert isinstance(field, FieldNode) and operation.name is not None
        found[field.name.value] = (text, operation.name.value)
    return found


CLIENT = _client_mutations()


PLACE_SHAPES: list[tuple[str, str | None]] = [
    (PLACE, None),
    CLIENT["placeOrder"],
    (screens.PLACE_ORDER, None),
    # aliases, __typename of the root, a fragment on the payload, @skip/@include
    (
        "mutation P($input: PlaceOrderInput!, $lines: Boolean = true, $noToken: Boolean!) { "
        "__typename placed: placeOrder(input: $input) { ...Pay errs: userErrors { code } } } "
        "fragment Pay on OrderPayload { order { ref: id totalCents lines @include(if: $lines) "
        "{ sku } } consistencyToken @skip(if: $noToken) __typename }",
        None,
    ),
    # the smallest answer
    ("mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } } }", None),
]

CHANGE = {
    name: f"mutation C($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
    "{ order { ...Full } userErrors { field message code } consistencyToken } } " + ORDER
    for name in ("payOrder", "cancelOrder", "shipOrder", "deliverOrder")
}
TIME = re.compile(rb'"\d{4}-\d\d-\d\dT[0-9:.]+\+00:00"')
POSITION = re.compile(rb'"position":\d+')
STOCK = re.compile(rb'"stockAvailable":\d+')


@pytest.fixture(scope="module")
def shop(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    yield from seeded_shop(
        template_dir,
        tmp_path_factory.mktemp("compiled-mutations"),
        SHOPFRONT_METRICS_TOKEN="metrics-" + "m" * 40,
    )


def _mutations(shop: Shop) -> dict[str, float]:
    """shopfront_graphql_mutations_total by path."""
    found = {}
    headers = {"Authorization": f"Bearer {shop.metrics_token}"}
    for line in shop.client.get(shop.url + "/metrics", headers=headers).text.splitlines():
        if line.startswith("shopfront_graphql_mutations_total{"):
            labels, _, value = line.partition("} ")
            found[labels.split('"')[1]] = float(value)
    return found


def _place_input(shop: Shop, key: str | None, quantity: int = 1) -> dict[str, Any]:
    lines = [{"sku": shop.skus[0], "quantity": quantity}, {"sku": shop.skus[1], "quantity": 1}]
    return {"lines": lines} if key is None else {"lines": lines, "idempotencyKey": key}


def _body(query: str, operation: str | None = None, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "variables": variables}
    if operation is not None:
        body["operationName"] = operation
    return body


def _compiled_once(shop: Shop, body: dict[str, Any], token: str | None) -> httpx.Response:
    """The compiled answer, checked to have taken the compiled path (a document's first
    request, which parses and validates it, is the Strawberry executor's: see ``_known``)."""
    before = _mutations(shop).get("compiled", 0)
    response = shop.post(body, token, compiled=True)
    assert _mutations(shop).get("compiled", 0) == before + 1, body
    return response


def _known(
    shop: Shop,
    query: str,
    operation: str | None = None,
    field: str = "placeOrder",
    **variables: Any,
) -> None:
    """Has the server parse and validate the document: a refused placeOrder (an unknown
    sku) or change (an order that does not exist), which changes nothing."""
    refused: dict[str, Any]
    if field == "placeOrder":
        refused = {"lines": [{"sku": "NO-SUCH-SKU", "quantity": 1}]}
    else:
        refused = {"orderId": shop.product_ids[0], **variables}
    body = _body(query, operation, input=refused, noToken=False)
    answer = shop.post(body, None, compiled=False)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


def test_place_order_answers_the_same_bytes_whichever_path_places_it(shop: Shop) -> None:
    token = shop.tokens["customer"]
    for query, operation in PLACE_SHAPES:
        _known(shop, query, operation)
        for compiled_first in (True, False):
            variables = {"input": _place_input(shop, f"key-{uuid.uuid4()}"), "noToken": False}
            body = _body(query, operation, **variables)
            first = (
                _compiled_once(shop, body, token)
                if compiled_first
                else shop.post(body, token, compiled=False)
            )
            replay = (
                shop.post(body, token, compiled=False)
                if compiled_first
                else _compiled_once(shop, body, token)
            )
            assert first.status_code == 200, first.text
            assert first.json().get("errors") is None, first.text
            assert (replay.status_code, replay.content) == (first.status_code, first.content)


def test_a_placed_order_is_placed_once(shop: Shop) -> None:
    """Without an idempotency key the compiled path places exactly one order, and its
    answer is what the order's own query answers on the Strawberry path."""
    token = shop.tokens["customer"]
    before = _count_orders(shop, token)
    _known(shop, PLACE)
    placed = _compiled_once(shop, _body(PLACE, input=_place_input(shop, None)), token).json()
    payload = placed["data"]["placeOrder"]
    assert payload["userErrors"] == [] and payload["consistencyToken"]
    read = shop.client.post(
        shop.url + "/graphql",
        json={
            "query": "query($id: ID!) { order(id: $id) { ...Full } } " + ORDER,
            "variables": {"id": payload["order"]["id"]},
        },
        headers={
            "Authorization": f"Bearer {token}",
            "Shopfront-Compiled-Reads": "off",
            "Shopfront-Consistency": payload["consistencyToken"],
        },
    ).json()
    assert read["data"]["order"] == payload["order"]
    assert _count_orders(shop, token) == before + 1


def _count_orders(shop: Shop, token: str | None) -> int:
    answer = shop.post(_body("{ me { orderCount } }"), token, compiled=False).json()
    return int(answer["data"]["me"]["orderCount"])


def test_refusals_answer_the_same_bytes_and_change_nothing(shop: Shop) -> None:
    own, others = shop.order_ids[0], shop.order_ids[-1]
    refusals = [
        _body(PLACE, input={"lines": [{"sku": "NO-SUCH-SKU", "quantity": 1}]}),
        _body(PLACE, input={"lines": [{"sku": shop.skus[0], "quantity": 10**6}]}),
        _body(PLACE, input={"lines": [{"sku": shop.skus[0], "quantity": 0}]}),
        _body(PLACE, input={"lines": []}),
        _body(PLACE, input={**_place_input(shop, None), "idempotencyKey": ""}),
        _body(CHANGE["payOrder"], input={"orderId": shop.product_ids[0]}),  # not an order
        _body(CHANGE["payOrder"], input={"orderId": "%%%"}),  # not an id at all
        _body(CHANGE["payOrder"], input={"orderId": others}),  # someone else's
        _body(CHANGE["cancelOrder"], input={"orderId": own, "expectedVersion": 999}),
        _body(
            CHANGE["shipOrder"],
            input={"orderId": own, "carrier": "DHL", "trackingNumber": "T1", "expectedVersion": 0},
        ),
        _body(CHANGE["deliverOrder"], input={"orderId": own, "expectedVersion": 0}),
    ]
    for body in refusals:
        for actor in ("anonymous", "customer", "other customer", "staff"):
            token = shop.tokens[actor]
            before = _mutations(shop).get("compiled", 0)
            answer = shop.same(body, token)
            assert _mutations(shop).get("compiled", 0) == before + 1, (actor, body)
            payload = answer.json()["data"]
            assert payload is not None and next(iter(payload.values()))["userErrors"], answer.text


def test_bad_input_falls_back_before_any_command(shop: Shop) -> None:
    """Variables that do not coerce are answered by Strawberry (a request error), with the
    same bytes, before anything runs."""
    token = shop.tokens["staff"]
    for body in (
        _body(PLACE, input={"lines": [{"sku": 1}]}),
        _body(PLACE),
    ):
        before = _mutations(shop)
        shop.same(body, token)
        after = _mutations(shop)
        assert after.get("compiled", 0) == before.get("compiled", 0), body


def _masked(response: httpx.Response, order_id: str, token: str | None) -> bytes:
    """The answer with this order's own id, times and consistency token masked, and what
    the twin's own write moved: the read models' position (``extensions.readModel``) and
    the products' stock (cancelling releases it)."""
    raw = response.content.replace(order_id.encode(), b"<order>")
    if token is not None:
        raw = raw.replace(token.encode(), b"<t>")
    raw = POSITION.sub(b'"position":0', TIME.sub(b'"<time>"', raw))
    return STOCK.sub(b'"stockAvailable":0', raw)


def _twins(shop: Shop) -> tuple[str, str]:
    token = shop.tokens["customer"]
    ids = []
    for _ in range(2):
        answer = shop.post(_body(PLACE, input=_place_input(shop, None)), token, compiled=False)
        ids.append(answer.json()["data"]["placeOrder"]["order"]["id"])
    return ids[0], ids[1]


@pytest.mark.parametrize("documents", ["schema", "client"])
def test_order_changes_answer_the_same_bytes_on_twin_orders(shop: Shop, documents: str) -> None:
    """``documents``: this module's (every field of the payload) or the TypeScript
    client's (where it has the mutation)."""
    customer, staff = shop.tokens["customer"], shop.tokens["staff"]
    # (mutation, who, its input's other fields) in lifecycle order; the last pair cancels
    # a second pair of twins before shipping.
    steps = [
        ("payOrder", customer, {}),
        ("shipOrder", staff, {"carrier": "DHL", "trackingNumber": "TRACK-1"}),
        ("deliverOrder", staff, {}),
    ]
    for sequence in (steps, [("cancelOrder", customer, {"reason": "changed my mind"})]):
        compiled_id, fallback_id = _twins(shop)
        for name, token, extra in sequence:
            own = (CHANGE[name], None)
            query, operation = CLIENT.get(name, own) if documents == "client" else own
            _known(shop, query, operation, name, **extra)
            answers = {}
            for order_id, compiled in ((compiled_id, True), (fallback_id, False)):
                body = _body(query, operation, input={"orderId": order_id, **extra})
                response = (
                    _compiled_once(shop, body, token)
                    if compiled
                    else shop.post(body, token, compiled=False)
                )
                payload = response.json()["data"][name]
                assert payload["userErrors"] == [], response.text
                answers[compiled] = _masked(response, order_id, payload.get("consistencyToken"))
            assert answers[True] == answers[False], name


def test_off_by_setting(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """SHOPFRONT_COMPILED_MUTATIONS=false: Strawberry runs every mutation."""
    for off in seeded_shop(
        template_dir,
        tmp_path_factory.mktemp("compiled-mutations-off"),
        SHOPFRONT_METRICS_TOKEN="metrics-" + "m" * 40,
        SHOPFRONT_COMPILED_MUTATIONS="false",
    ):
        _known(off, PLACE)
        body = _body(PLACE, input=_place_input(off, None))
        answer = off.post(body, off.tokens["customer"], compiled=True)
        assert answer.json()["data"]["placeOrder"]["userErrors"] == []
        assert _mutations(off) == {"compiled": 0, "fallback": 2}


def test_an_answer_the_writers_refuse_is_strawberrys_and_the_command_runs_once(
    shop: Shop,
) -> None:
    """An order over GraphQL's Int (22 units at 1,000,000.00: totalCents past 2^31 - 1):
    the compiled writers refuse the value after the command ran, so Strawberry answers
    (the order null, an error at its totalCents), with what the command answered handed
    over: exactly one order is placed, and the answer is the Strawberry path's."""
    staff, customer = shop.tokens["staff"], shop.tokens["customer"]
    sku = f"DEAR-{uuid.uuid4().hex[:8]}"
    added = shop.post(
        _body(
            "mutation($input: AddProductInput!) { addProduct(input: $input) { userErrors "
            "{ code } } }",
            input={"sku": sku, "name": "Dear", "priceCents": 100_000_000, "stock": 1000},
        ),
        staff,
        compiled=False,
    )
    assert added.json()["data"]["addProduct"]["userErrors"] == [], added.text
    _known(shop, PLACE)
    body = _body(PLACE, input={"lines": [{"sku": sku, "quantity": 22}]})
    answers = []
    for compiled in (True, False):
        before, orders = _mutations(shop), _count_orders(shop, customer)
        response = shop.post(body, customer, compiled=compiled)
        assert _count_orders(shop, customer) == orders + 1
        after = _mutations(shop)
        assert after.get("fallback", 0) == before.get("fallback", 0) + 1  # handed over
        answer = response.json()
        assert answer["data"]["placeOrder"]["order"] is None, response.text
        assert answer["errors"][0]["path"] == ["placeOrder", "order", "totalCents"]
        token = answer["data"]["placeOrder"]["consistencyToken"]
        answers.append(POSITION.sub(b'"position":0', response.content.replace(token.encode(), b"")))
    assert answers[0] == answers[1]
