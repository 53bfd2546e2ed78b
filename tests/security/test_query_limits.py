"""Query limits over HTTP: a document that is too deep, has too many aliases or
operations, too many tokens, or costs too much is refused before anything runs, with a
clear error and its ``extensions.code``, and no ``data``; every screen query of the
frontends passes them, at the largest page size."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.client import (
    GRAPHQL_RESPONSE,
    JSON,
    ORDER_FIELDS,
    TIMEOUT,
    Json,
    api_client,
    bearer,
    error_codes,
)

from .support import Server, hs256, request_error

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
async def http(dev_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=dev_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as client:
        yield client


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: Json | None = None,
    *,
    operation_name: str | None = None,
    accept: str = GRAPHQL_RESPONSE,
    token: str | None = None,
) -> httpx.Response:
    body: Json = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation_name is not None:
        body["operationName"] = operation_name
    headers = {"Accept": accept, **(bearer(token) if token else {})}
    return await http.post("/graphql", json=body, headers=headers)


def ok(response: httpx.Response) -> Json:
    """An executed operation without errors."""
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    body: Json = response.json()
    assert "errors" not in body, body["errors"]
    assert body["data"] is not None
    return body


# -- depth -------------------------------------------------------------------------------


def nested(levels: int) -> str:
    """``levels`` data fields nested in each other (unknown ones: no valid path in this
    schema is deeper than the limit, but the depth is refused before anything else)."""
    return "{ " + "a { " * (levels - 1) + "b" + " }" * levels


def of_type_chain(levels: int) -> str:
    """``__type`` introspection nested ``levels`` times under ``type``: depth levels + 4."""
    inner = "{ name }"
    for _ in range(levels):
        inner = f"{{ ofType {inner} }}"
    return f'{{ __type(name: "Order") {{ fields {{ type {inner} }} }} }}'


def fragment_chain(levels: int) -> str:
    """The same depth built from named fragments spread into each other."""
    fragments = [f"fragment F{i} on __Type {{ ofType {{ ...F{i + 1} }} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on __Type {{ name }}")
    return '{ __type(name: "Order") { fields { type { ...F0 } } } }\n' + "\n".join(fragments)


def data_fragment_chain(levels: int) -> str:
    """Data fields nested ``levels`` deep through fragments."""
    fragments = [f"fragment D{i} on Query {{ a {{ ...D{i + 1} }} }}" for i in range(levels - 1)]
    fragments.append(f"fragment D{levels - 1} on Query {{ b }}")
    return "{ ...D0 }\n" + "\n".join(fragments)


async def test_an_over_deep_query_is_refused(http: httpx.AsyncClient) -> None:
    # Data: 12 levels are allowed (the fields do not exist: another error), 13 are not.
    body = request_error(await post(http, nested(12)), 400, "GRAPHQL_VALIDATION_FAILED")
    assert "QUERY_TOO_DEEP" not in error_codes(body), body
    for query in (nested(13), nested(40), data_fragment_chain(13), data_fragment_chain(40)):
        body = request_error(await post(http, query), 400, "QUERY_TOO_DEEP")
        assert "depth" in body["errors"][0]["message"].lower(), body
    # application/json: the same error, status 200 (graphql-over-http), still no data
    request_error(await post(http, nested(13), accept=JSON), 200, "QUERY_TOO_DEEP")


async def test_introspection_has_its_own_depth_limit(http: httpx.AsyncClient) -> None:
    # Standard introspection queries are 13 to 15 deep: allowed up to 20.
    ok(await post(http, of_type_chain(16)))  # depth 20
    ok(await post(http, fragment_chain(16)))
    for query in (of_type_chain(17), of_type_chain(40), fragment_chain(17), fragment_chain(40)):
        body = request_error(await post(http, query), 400, "QUERY_TOO_DEEP")
        assert "introspection depth" in body["errors"][0]["message"].lower(), body


async def test_abusive_introspection_is_refused(http: httpx.AsyncClient) -> None:
    # Many introspection roots in one document.
    ok(
        await post(
            http,
            "{ " + " ".join(f"s{i}: __schema {{ queryType {{ name }} }}" for i in range(10)) + " }",
        )
    )
    many = "{ " + " ".join(f"s{i}: __schema {{ queryType {{ name }} }}" for i in range(11)) + " }"
    body = request_error(await post(http, many), 400, "QUERY_TOO_COSTLY")
    assert "__schema/__type" in body["errors"][0]["message"], body
    # Lists nested in lists, within the depth limit: the response would multiply.
    lists = "{ __schema { types { fields { type { fields { type { fields { type { fields { name }"
    lists += " } } } } } } } } }"
    body = request_error(await post(http, lists), 400, "QUERY_TOO_COSTLY")
    assert "introspection cost" in body["errors"][0]["message"].lower(), body
    # The same roots spread through doubling fragments count once per spread.
    tag = (
        "{ ...I0 }\n"
        + "\n".join(f"fragment I{i} on Query {{ ...I{i + 1} ...I{i + 1} }}" for i in range(5))
        + "\nfragment I5 on Query { __schema { queryType { name } } }"
    )
    request_error(await post(http, tag), 400, "QUERY_TOO_COSTLY")


# -- aliases -----------------------------------------------------------------------------


def aliases(count: int, *, in_fragment: int = 0) -> str:
    direct = " ".join(f"a{i}: __typename" for i in range(count - in_fragment))
    if not in_fragment:
        return f"{{ {direct} }}"
    hidden = " ".join(f"f{i}: __typename" for i in range(in_fragment))
    return f"{{ {direct} ...Hidden }}\nfragment Hidden on Query {{ {hidden} }}"


async def test_too_many_aliases_are_refused(http: httpx.AsyncClient) -> None:
    ok(await post(http, aliases(30)))
    for query in (aliases(31), aliases(31, in_fragment=16), aliases(500)):
        body = request_error(await post(http, query), 400, "TOO_MANY_ALIASES")
        assert "alias" in body["errors"][0]["message"].lower(), body


# -- operations per document ---------------------------------------------------------------


def operations(count: int) -> str:
    return "\n".join(f"query Q{i} {{ __typename }}" for i in range(count))


async def test_too_many_operations_in_one_document_are_refused(http: httpx.AsyncClient) -> None:
    ok(await post(http, operations(10), operation_name="Q9"))
    for count in (11, 200):
        body = request_error(
            await post(http, operations(count), operation_name="Q0"), 400, "TOO_MANY_OPERATIONS"
        )
        assert "operations" in body["errors"][0]["message"], body


# -- size in tokens ------------------------------------------------------------------------


async def test_a_document_of_more_than_5000_tokens_is_refused(http: httpx.AsyncClient) -> None:
    # "{", n names, "}": n + 2 tokens. Just under the limit, the size is not what is
    # refused (graphql-core's own budget for comparing 4990 same-named fields may be).
    ok(await post(http, "{ " + "__typename " * 400 + "}"))
    body = (await post(http, "{ " + "__typename " * 4990 + "}")).json()
    assert "QUERY_TOO_LARGE" not in error_codes(body), body
    # (20,000 short names: still under the limit in bytes, 64 KiB)
    for query in ("{ " + "__typename " * 5000 + "}", "{ " + "a " * 20_000 + "}"):
        body = request_error(await post(http, query), 400, "QUERY_TOO_LARGE")
        assert "5000 tokens" in body["errors"][0]["message"], body
    # punctuation counts: an argument list of 5000 values is as large
    values = ", ".join(["1"] * 5000)
    request_error(
        await post(http, f"{{ products(first: [{values}]) {{ edges {{ cursor }} }} }}"),
        400,
        "QUERY_TOO_LARGE",
    )


# -- cost ----------------------------------------------------------------------------------

PRODUCT_PAGE = (
    "products(first: {first}) {{ edges {{ cursor node {{ "
    "id sku name description priceCents currency stockAvailable inStock }} }} }}"
)


def costly(first: str, copies: int = 25) -> str:
    """``copies`` aliased product pages of ``first`` items, 10 fields each."""
    page = PRODUCT_PAGE.format(first=first)
    return " ".join(f"p{i}: {page}" for i in range(copies))


async def test_a_too_costly_query_is_refused_before_it_runs(http: httpx.AsyncClient) -> None:
    # 25 pages of 100 products, 10 fields each: ~27,500 fields
    body = request_error(await post(http, f"{{ {costly('100')} }}"), 400, "QUERY_TOO_COSTLY")
    assert "cost" in body["errors"][0]["message"].lower(), body
    # first: 101 is clamped to the maximum page size for costing, not a way around it
    request_error(await post(http, f"{{ {costly('101')} }}"), 400, "QUERY_TOO_COSTLY")

    # The same with the page size in a variable: the cost is checked with the variables.
    query = f"query($n: Int) {{ {costly('$n')} }}"
    body = request_error(await post(http, query, {"n": 100}), 400, "QUERY_TOO_COSTLY")
    assert "cost" in body["errors"][0]["message"].lower(), body
    ok(await post(http, query, {"n": 10}))  # the same document, cheap variables: it runs

    ok(await post(http, f"{{ {costly('10')} }}"))

    # Nothing is left out by splitting it over fragments.
    page = PRODUCT_PAGE.format(first="100")
    fragment = "fragment Pages on Query { " + " ".join(f"f{i}: {page}" for i in range(13)) + " }"
    split = f"{{ {' '.join(f'p{i}: {page}' for i in range(12))} ...Pages }}\n{fragment}"
    request_error(await post(http, split), 400, "QUERY_TOO_COSTLY")


async def test_the_cost_counts_a_variable_default(http: httpx.AsyncClient) -> None:
    with_default = f"query($n: Int = 100) {{ {costly('$n')} }}"
    request_error(await post(http, with_default), 400, "QUERY_TOO_COSTLY")
    request_error(await post(http, with_default, {}), 400, "QUERY_TOO_COSTLY")
    ok(await post(http, with_default, {"n": 10}))


async def test_the_cost_counts_a_page_size_sent_as_a_float(http: httpx.AsyncClient) -> None:
    query = f"query($n: Int) {{ {costly('$n')} }}"
    request_error(await post(http, query, {"n": 100.0}), 400, "QUERY_TOO_COSTLY")
    ok(await post(http, query, {"n": 10.0}))


async def test_a_page_larger_than_100_is_bad_user_input(http: httpx.AsyncClient) -> None:
    customer, staff = hs256("limits-customer"), hs256("limits-staff", "staff")
    for query, token in (
        ("{ products(first: 101) { edges { cursor } } }", None),
        ("{ myOrders(first: 101) { edges { cursor } } }", customer),
        ("{ fulfillmentQueue(first: 101) { edges { cursor } } }", staff),
        ("{ products(first: -1) { edges { cursor } } }", None),
    ):
        response = await post(http, query, token=token)
        assert response.status_code == 200, response.text  # executed: a field error
        body = response.json()
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        assert "100" in body["errors"][0]["message"], body
    variables_query = "query($n: Int) { products(first: $n) { edges { cursor } } }"
    body = (await post(http, variables_query, {"n": 101})).json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def _cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


async def test_hostile_cursors_are_bad_user_input_not_internal_errors(
    http: httpx.AsyncClient,
) -> None:
    customer, staff = hs256("cursor-customer"), hs256("cursor-staff", "staff")
    for after in ("\u00b2", "9" * 30, "9" * 5000, "-1", "1e9", " 1"):
        for query, token in (
            ("query($a: String) { myOrders(after: $a) { edges { cursor } } }", customer),
            ("query($a: String) { fulfillmentQueue(after: $a) { edges { cursor } } }", staff),
        ):
            response = await post(http, query, {"a": _cursor(after)}, token=token)
            assert response.status_code == 200, response.text
            body = response.json()
            assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], (
                after,
                body,
            )


# -- every screen passes -------------------------------------------------------------------

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
SCREEN_ORDER = (
    ORDER_FIELDS
    + " cancelReason lines { product { id sku name priceCents currency stockAvailable inStock } }"
)
CATALOG = f"""query Catalog($first: Int, $after: String, $search: String, $inStock: Boolean) {{
  products(first: $first, after: $after, search: $search, inStock: $inStock) {{
    edges {{ cursor node {{
      id sku name description priceCents currency stockAvailable inStock }} }}
    {PAGE_INFO}
  }}
}}"""
ORDER_HISTORY = f"""query OrderHistory($first: Int, $after: String, $status: OrderStatus) {{
  myOrders(first: $first, after: $after, status: $status) {{
    edges {{ cursor node {{ {SCREEN_ORDER} }} }}
    {PAGE_INFO}
  }}
}}"""
ORDER_DETAIL = f"""query OrderDetail($id: ID!) {{
  order(id: $id) {{ {SCREEN_ORDER} customer {{ id name email }} }}
}}"""
PROFILE = """query Profile {
  me { id email name orderCount lifetimeSpendCents registeredAt }
}"""
STAFF = f"""query Staff($first: Int) {{
  salesDashboard {{
    orderCount revenueCents
    ordersByStatus {{ status count }}
    topProducts {{ sku name unitsSold revenueCents }}
  }}
  fulfillmentQueue(first: $first) {{
    edges {{ cursor node {{ {SCREEN_ORDER} customer {{ id name email }} }} }}
    {PAGE_INFO}
  }}
  projections {{
    name position headPosition lag lagMs state deadLetters
    parkedEvents(first: 20) {{ position streamId eventType error parkedAt }}
  }}
}}"""


async def test_every_screen_query_passes_the_limits(dev_server: Server) -> None:
    staff = hs256("screens-staff", "staff")
    async with api_client(dev_server.base_url) as api:
        product = await api.add_product(staff, stock=20)
        token, customer_id = await api.register_customer("Screen Tester")
        paid = await api.place_order(token, [(product["sku"], 2)])
        assert (await api.pay(token, paid["id"]))["userErrors"] == []
        shipped = await api.place_order(token, [(product["sku"], 1)])
        assert (await api.pay(token, shipped["id"]))["userErrors"] == []
        assert (await api.ship(staff, shipped["id"]))["userErrors"] == []

        async def screen(query: str, variables: Json, who: str) -> Any:
            # the largest page everywhere; and graphql-response+json, the strict media type
            response = await api.http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Accept": GRAPHQL_RESPONSE, **bearer(who)},
            )
            return ok(response)["data"]

        data = await screen(CATALOG, {"first": 100, "inStock": True}, token)
        assert product["sku"] in str(data)
        data = await screen(CATALOG, {"first": 100, "search": "E2E"}, token)
        assert data["products"]["edges"]

        data = await screen(ORDER_HISTORY, {"first": 100}, token)
        orders = [edge["node"] for edge in data["myOrders"]["edges"]]
        assert {order["id"] for order in orders} == {paid["id"], shipped["id"]}
        assert all(order["lines"][0]["product"]["sku"] == product["sku"] for order in orders)
        assert any(order["shipment"] for order in orders)
        assert all(order["payment"] and order["timeline"] for order in orders)

        data = await screen(ORDER_DETAIL, {"id": shipped["id"]}, token)
        assert data["order"]["shipment"]["carrier"] == "DHL"

        data = await screen(PROFILE, {}, token)
        assert data["me"]["id"] == customer_id and data["me"]["orderCount"] == 2

        data = await screen(STAFF, {"first": 100}, staff)
        assert data["salesDashboard"]["orderCount"] >= 2
        queue = [edge["node"]["id"] for edge in data["fulfillmentQueue"]["edges"]]
        assert paid["id"] in queue and shipped["id"] not in queue
        assert data["projections"]
