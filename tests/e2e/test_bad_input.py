"""Bad input of every kind gets a clear answer with a stable code, never a 500 or a stack
trace (every response passes through ``client.check_response``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .client import (
    GRAPHQL_RESPONSE,
    JSON,
    LEGACY_WS,
    ORDER_STATUS,
    TIMEOUT,
    TRANSPORT_WS,
    Api,
    Json,
    LiveAppLike,
    bearer,
    check_text,
    error_codes,
    transport_ws,
    unique,
)

PRODUCTS = "{ products(first: 1) { edges { node { sku } } } }"


def request_error(response: Any, status: int, code: str) -> Json:
    """A request-level error: the status, a JSON body with ``errors`` and no ``data``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] in (JSON, GRAPHQL_RESPONSE)
    body: Json = response.json()
    assert "data" not in body, body
    assert body["errors"], body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert body["errors"][0]["message"], body
    return body


def _post_raw(api: Api, content: bytes, content_type: str, **headers: str) -> Any:
    return api.request(
        "POST", "/graphql", content=content, headers={"Content-Type": content_type, **headers}
    )


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'"just a string"',
        b'{"query": 42}',
        b'{"query": ""}',
        b'{"variables": {}}',
        b'{"query": "{ __typename }", "variables": "not an object"}',
        b'{"query": "{ __typename }", "variables": "{broken"}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "operationName": 7}',
        b"\xff\xfe\x00garbage",
    ],
)
async def test_malformed_body_is_400_with_code(api: Api, body: bytes) -> None:
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = await _post_raw(api, body, "application/json", Accept=accept)
        request_error(response, 400, "BAD_REQUEST")
        assert response.headers["content-type"].startswith(accept)


async def test_wrong_content_type_is_415(api: Api) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await _post_raw(api, b'{"query": "{ __typename }"}', content_type)
        request_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_unacceptable_accept_is_406(api: Api) -> None:
    response = await api.post(PRODUCTS, accept="text/csv")
    request_error(response, 406, "NOT_ACCEPTABLE")


async def test_oversized_body_is_413(api: Api) -> None:
    body = json.dumps({"query": "{ __typename }", "padding": "x" * 1_100_000}).encode()
    response = await _post_raw(api, body, "application/json")
    request_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_too_deeply_nested_query_is_a_parse_error(api: Api) -> None:
    query = "{ products { edges { node { sku " + "{ x " * 2000 + "}" * 2000 + " } } } }"
    response = await api.post(query, accept=GRAPHQL_RESPONSE)
    request_error(response, 400, "GRAPHQL_PARSE_FAILED")


async def test_unknown_field_is_a_validation_error(api: Api) -> None:
    query = "{ products { edges { node { sku colour } } } }"
    response = await api.post(query)  # application/json: 200 for a well-formed request
    body = request_error(response, 200, "GRAPHQL_VALIDATION_FAILED")
    assert "colour" in body["errors"][0]["message"]
    assert body["errors"][0]["locations"]
    response = await api.post(query, accept=GRAPHQL_RESPONSE)
    request_error(response, 400, "GRAPHQL_VALIDATION_FAILED")
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)


async def test_syntax_error_is_a_parse_error(api: Api) -> None:
    query = "{ products(first: 2 { edges }"
    response = await api.post(query, accept=GRAPHQL_RESPONSE)
    body = request_error(response, 400, "GRAPHQL_PARSE_FAILED")
    assert body["errors"][0]["message"].startswith("Syntax Error")
    assert body["errors"][0]["locations"]
    response = await api.post(query, accept=JSON)
    request_error(response, 200, "GRAPHQL_PARSE_FAILED")
    assert response.headers["content-type"].startswith(JSON)


async def test_wrong_variable_types_are_bad_user_input(api: Api) -> None:
    cases: list[tuple[str, Json]] = [
        ("query($n: Int) { products(first: $n) { edges { cursor } } }", {"n": "many"}),
        ("query($n: Int) { products(first: $n) { edges { cursor } } }", {"n": 1.5}),
        ("query($s: Boolean) { products(inStock: $s) { edges { cursor } } }", {"s": "yes"}),
        ("query($id: ID!) { order(id: $id) { id } }", {}),  # required, not given
        ("query($id: ID!) { order(id: $id) { id } }", {"id": None}),
        ("query($st: OrderStatus) { myOrders(status: $st) { edges { cursor } } }", {"st": "LOST"}),
        (
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { userErrors { code } } }",
            {"i": {"lines": [{"sku": "MUG-001"}]}},  # quantity missing
        ),
        (
            "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { userErrors { code } } }",
            {"i": {"lines": [{"sku": "MUG-001", "quantity": 1, "colour": "red"}]}},
        ),
    ]
    for query, variables in cases:
        for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE, 400)):
            response = await api.post(query, variables, accept=accept)
            body = request_error(response, status, "BAD_USER_INPUT")
            assert body["errors"][0]["message"].startswith("Variable '$"), body


async def test_documents_that_misuse_variables_are_validation_errors(api: Api) -> None:
    # The document itself is wrong, whatever values are sent: validation, not user input
    # (graphql-core words these "Variable '$..." as it does bad values).
    cases: list[tuple[str, Json]] = [
        ("query($n: Int) { products(first: 2) { edges { cursor } } }", {"n": 1}),  # unused
        ("query { products(first: $n) { edges { cursor } } }", {"n": 1}),  # undefined
        ("query($n: String) { products(first: $n) { edges { cursor } } }", {"n": "2"}),
        ("query($n: Order) { products(first: 2) { edges { cursor } } }", {}),  # not input
    ]
    for query, variables in cases:
        for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE, 400)):
            response = await api.post(query, variables, accept=accept)
            body = request_error(response, status, "GRAPHQL_VALIDATION_FAILED")
            assert body["errors"][0]["message"].startswith("Variable '$"), body


async def test_wrong_literal_argument_is_a_validation_error(api: Api) -> None:
    response = await api.post('{ products(first: "ten") { edges { cursor } } }')
    request_error(response, 200, "GRAPHQL_VALIDATION_FAILED")


async def test_unknown_operation_name(api: Api) -> None:
    query = "query Catalog { products(first: 1) { edges { cursor } } } query Other { __typename }"
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = await api.post(query, operation_name="Missing", accept=accept)
        body = request_error(response, 400, "GRAPHQL_VALIDATION_FAILED")
        assert "Missing" in body["errors"][0]["message"]
        assert body["errors"][0]["message"] != "Missing"  # says what is wrong with it
    # The right name runs that operation.
    body = await api.execute(query, operation_name="Other")
    assert "errors" not in body and body["data"] == {"__typename": "Query"}


async def test_several_operations_need_an_operation_name(api: Api) -> None:
    """GraphQL spec, GetOperation: with several operations and no operationName the
    request is an error; the server must not pick one."""
    query = "query Catalog { products(first: 1) { edges { cursor } } } query Other { __typename }"
    for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE, 400)):
        response = await api.post(query, accept=accept)
        assert response.status_code == status, response.text
        body = response.json()
        assert "data" not in body or body["data"] is None, body
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body


async def test_get_runs_queries_but_not_mutations_or_subscriptions(api: Api) -> None:
    response = await api.request(
        "GET", "/graphql", params={"query": PRODUCTS}, headers={"Accept": JSON}
    )
    assert response.status_code == 200
    assert response.json()["data"]["products"]["edges"]

    mutation = 'mutation { payOrder(input: {orderId: "x"}) { userErrors { code } } }'
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = await api.request(
            "GET", "/graphql", params={"query": mutation}, headers={"Accept": accept}
        )
        request_error(response, 405, "METHOD_NOT_ALLOWED")
        assert "POST" in response.headers["allow"]

    subscription = 'subscription { orderStatus(orderId: "x") { event } }'
    response = await api.post(subscription)
    request_error(response, 400, "SUBSCRIPTION_NEEDS_WEBSOCKET")
    assert "allow" not in response.headers

    response = await api.request(
        "GET", "/graphql", params={"query": PRODUCTS, "variables": "{oops"}
    )
    request_error(response, 400, "BAD_REQUEST")
    response = await api.request("PUT", "/graphql", json={"query": PRODUCTS})
    assert response.status_code == 405


def _token(secret: str, **claims: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    payload: Json = {"sub": "someone", "role": "customer", "iat": now}
    payload["exp"] = now + dt.timedelta(hours=1)
    payload.update(claims)  # a claim given as None is left out
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def bad_tokens(live_app: LiveAppLike) -> dict[str, str]:
    secret = live_app.env["SHOPFRONT_JWT_SECRET"]
    now = dt.datetime.now(dt.UTC)
    return {
        "garbage": "Bearer not-a-jwt",
        "expired": f"Bearer {_token(secret, exp=now - dt.timedelta(minutes=5))}",
        "wrong signature": f"Bearer {_token('another-secret-' + 'y' * 40)}",
        "tampered": "Bearer " + live_app.customer_token[:-3] + "abc",
        "no exp": f"Bearer {_token(secret, exp=None)}",
        "bad role": f"Bearer {_token(secret, role='admin')}",
        "empty sub": f"Bearer {_token(secret, sub='')}",
        "alg none": "Bearer "
        + jwt.encode(
            {"sub": "x", "role": "staff", "exp": now + dt.timedelta(hours=1)},
            key="",
            algorithm="none",
        ),
        "wrong scheme": f"Basic {live_app.customer_token}",
        "no token": "Bearer",
    }


async def test_bad_tokens_are_401(api: Api, live_app: LiveAppLike) -> None:
    for name, header in bad_tokens(live_app).items():
        for query in (PRODUCTS, "{ me { id } }"):  # even for what anonymous may do
            response = await api.post(query, headers={"Authorization": header})
            body = request_error(response, 401, "UNAUTHENTICATED")
            assert response.headers.get("www-authenticate", "").startswith("Bearer"), name
            check_text(json.dumps(body))
    # The good token still works.
    body = await api.execute("{ me { id } }", token=live_app.customer_token)
    assert body["data"]["me"]["id"]


async def test_websocket_with_a_bad_token_is_rejected(live_app: LiveAppLike) -> None:
    for name, header in bad_tokens(live_app).items():
        async with connect(
            live_app.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
        ) as ws:
            await ws.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": header}})
            )
            with pytest.raises(ConnectionClosed) as closed:
                message = await asyncio_wait(ws.recv())
                pytest.fail(f"{name}: expected the connection to close, got {message!r}")
            assert closed.value.rcvd is not None, name
            assert closed.value.rcvd.code == 4401, (name, closed.value.rcvd)

    # connection_init payload that is not an object: an invalid message (4400, per
    # graphql-transport-ws), as is an Authorization that is not a string; a bearer without
    # a token: a bad token (4401). Not a crash either way.
    payloads: list[tuple[object, int]] = [
        ("Bearer x", 4400),
        ([1], 4400),
        ({"Authorization": 42}, 4400),
        ({"Authorization": "Bearer "}, 4401),
    ]
    for payload, code in payloads:
        async with connect(
            live_app.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio_wait(ws.recv())
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == code, (payload, closed.value.rcvd)

    # The legacy protocol answers connection_error, then closes.
    async with connect(
        live_app.ws_url, subprotocols=[LEGACY_WS], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer("not-a-jwt")}))
        raw = await asyncio_wait(ws.recv())
        check_text(str(raw))
        message = json.loads(raw)
        assert message["type"] == "connection_error", message
        with pytest.raises(ConnectionClosed):
            await asyncio_wait(ws.recv())


async def test_subscribe_before_connection_init_is_refused(live_app: LiveAppLike) -> None:
    async with connect(
        live_app.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { myOrders { event } }"},
                }
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio_wait(ws.recv())
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def asyncio_wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


UNKNOWN_ORDER_IDS = [
    "!!!",
    "",
    "T3JkZXI6",  # "Order:"
    "T3JkZXI6bm8tc3VjaC1vcmRlcg",  # "Order:no-such-order"
    "UHJvZHVjdDpuby1zdWNoLXByb2R1Y3Q",  # "Product:no-such-product"
    "Q3VzdG9tZXI6eA",  # "Customer:x"
    "x" * 500,
    "Order:plain-text",
    "\u00e9\u00e8\u4e2d",
]


async def test_unknown_and_malformed_ids_are_null_or_not_found(
    api: Api, live_app: LiveAppLike
) -> None:
    staff, customer = live_app.staff_token, live_app.customer_token
    for bad_id in UNKNOWN_ORDER_IDS:
        for token in (customer, staff):
            for field in ("order", "node"):
                body = await api.execute(
                    f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": bad_id}, token=token
                )
                assert body["data"] == {field: None}, (bad_id, body)
                assert set(error_codes(body)) <= {"NOT_FOUND"}, (bad_id, body)
        for name, input_type, token, extra in (
            ("payOrder", "PayOrderInput", customer, {}),
            ("cancelOrder", "CancelOrderInput", customer, {"reason": "x"}),
            ("shipOrder", "ShipOrderInput", staff, {"carrier": "DHL", "trackingNumber": "1"}),
            ("deliverOrder", "DeliverOrderInput", staff, {}),
        ):
            payload = await api.order_mutation(
                name, input_type, {"orderId": bad_id, **extra}, token=token, fields="id"
            )
            assert payload["order"] is None, (name, bad_id, payload)
            assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], payload
            assert payload["userErrors"][0]["field"] == "orderId"

    # ... and over WebSocket: an error, no data.
    async with transport_ws(live_app.ws_url, customer) as ws:
        for bad_id in ("!!!", "T3JkZXI6bm8tc3VjaC1vcmRlcg"):
            op_id = await ws.subscribe(ORDER_STATUS, {"id": bad_id})
            errors = await ws.errors_of(op_id)
            assert [e.get("extensions", {}).get("code") for e in errors] == ["NOT_FOUND"]


async def _user_errors(
    api: Api, mutation: str, input_type: str, input: Json, token: str | None, entity: str
) -> list[Json]:
    data = await api.data(
        f"""mutation($input: {input_type}!) {{
              {mutation}(input: $input) {{
                {entity} {{ id }} userErrors {{ field message code }}
              }}
            }}""",
        {"input": input},
        token=token,
    )
    payload = data[mutation]
    assert payload[entity] is None, payload
    errors: list[Json] = payload["userErrors"]
    assert errors, payload
    for error in errors:
        assert error["message"], error
    return errors


async def test_business_errors_are_user_errors_with_stable_codes(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    token, _ = await api.register_customer()
    product = await api.add_product(staff, stock=2)
    other = await api.add_product(staff, stock=5)

    async def place(lines: list[Json]) -> list[Json]:
        return await _user_errors(
            api, "placeOrder", "PlaceOrderInput", {"lines": lines}, token, "order"
        )

    # OUT_OF_STOCK, and nothing of the order half-applied
    errors = await place(
        [{"sku": other["sku"], "quantity": 1}, {"sku": product["sku"], "quantity": 3}]
    )
    assert [e["code"] for e in errors] == ["OUT_OF_STOCK"]
    assert await api.stock_of(other["sku"]) == 5
    assert await api.stock_of(product["sku"]) == 2
    # the same SKU on two lines adds up
    errors = await place(
        [{"sku": product["sku"], "quantity": 2}, {"sku": product["sku"], "quantity": 1}]
    )
    assert [e["code"] for e in errors] == ["OUT_OF_STOCK"]
    # sold out product
    errors = await place([{"sku": "CAP-GRN", "quantity": 1}])
    assert [e["code"] for e in errors] == ["OUT_OF_STOCK"]

    # UNKNOWN_SKU
    errors = await place([{"sku": unique("NOPE"), "quantity": 1}])
    assert [e["code"] for e in errors] == ["UNKNOWN_SKU"]
    errors = await _user_errors(
        api,
        "restockProduct",
        "RestockProductInput",
        {"sku": unique("NOPE"), "quantity": 1},
        staff,
        "product",
    )
    assert [e["code"] for e in errors] == ["UNKNOWN_SKU"]

    # INVALID_INPUT
    for lines in (
        [{"sku": product["sku"], "quantity": 0}],
        [{"sku": product["sku"], "quantity": -1}],
        [{"sku": product["sku"], "quantity": 1_000_000}],
        [],
        [{"sku": "bad sku with spaces", "quantity": 1}],
    ):
        errors = await place(lines)
        assert [e["code"] for e in errors] == ["INVALID_INPUT"], lines
    for email in ("not-an-email", "", "a@b", "two@@example.com", "x" * 300 + "@example.com"):
        errors = await _user_errors(
            api,
            "registerCustomer",
            "RegisterCustomerInput",
            {"email": email, "name": "N"},
            None,
            "customer",
        )
        assert [e["code"] for e in errors] == ["INVALID_INPUT"], email
        assert errors[0]["field"] == "email"
    errors = await _user_errors(
        api,
        "registerCustomer",
        "RegisterCustomerInput",
        {"email": f"{unique('n')}@example.com", "name": "   "},
        None,
        "customer",
    )
    assert [e["code"] for e in errors] == ["INVALID_INPUT"]
    for bad in ({"priceCents": -1}, {"stock": -5}, {"name": ""}, {"sku": "has space"}):
        product_input = {"sku": unique("OK"), "name": "N", "priceCents": 1, "stock": 1, **bad}
        errors = await _user_errors(
            api, "addProduct", "AddProductInput", product_input, staff, "product"
        )
        assert [e["code"] for e in errors] == ["INVALID_INPUT"], bad

    # EMAIL_TAKEN (case and spaces do not make a new address)
    email = f"{unique('taken')}@example.com"
    register = {"email": email, "name": "First"}
    data = await api.data(
        """mutation($input: RegisterCustomerInput!) {
             registerCustomer(input: $input) { token userErrors { code } }
           }""",
        {"input": register},
    )
    assert data["registerCustomer"]["userErrors"] == []
    for again in (email, email.upper(), f"  {email} "):
        errors = await _user_errors(
            api,
            "registerCustomer",
            "RegisterCustomerInput",
            {"email": again, "name": "Two"},
            None,
            "customer",
        )
        assert [e["code"] for e in errors] == ["EMAIL_TAKEN"], again

    # SKU_TAKEN
    errors = await _user_errors(
        api,
        "addProduct",
        "AddProductInput",
        {"sku": product["sku"], "name": "Dup", "priceCents": 1, "stock": 1},
        staff,
        "product",
    )
    assert [e["code"] for e in errors] == ["SKU_TAKEN"]

    # FORBIDDEN: a customer may not run staff commands, staff may not place orders
    for mutation, input_type, input in (
        (
            "addProduct",
            "AddProductInput",
            {"sku": unique("MINE"), "name": "Mine", "priceCents": 1, "stock": 1},
        ),
        ("restockProduct", "RestockProductInput", {"sku": product["sku"], "quantity": 5}),
        ("changeProductPrice", "ChangeProductPriceInput", {"sku": product["sku"], "priceCents": 1}),
    ):
        errors = await _user_errors(api, mutation, input_type, input, token, "product")
        assert [e["code"] for e in errors] == ["FORBIDDEN"], mutation
        errors = await _user_errors(api, mutation, input_type, input, None, "product")
        assert [e["code"] for e in errors] == ["UNAUTHENTICATED"], mutation
    assert await api.stock_of(product["sku"]) == 2
    errors = await _user_errors(
        api,
        "placeOrder",
        "PlaceOrderInput",
        {"lines": [{"sku": product["sku"], "quantity": 1}]},
        staff,
        "order",
    )
    assert [e["code"] for e in errors] == ["FORBIDDEN"]

    # INVALID_STATE: ship an unpaid order, deliver an unshipped one, pay twice
    order = await api.place_order(token, [(product["sku"], 1)])
    ship = await api.ship(staff, order["id"])
    assert ship["order"] is None
    assert [e["code"] for e in ship["userErrors"]] == ["INVALID_STATE"]
    deliver = await api.deliver(staff, order["id"])
    assert [e["code"] for e in deliver["userErrors"]] == ["INVALID_STATE"]
    assert (await api.pay(token, order["id"]))["userErrors"] == []
    pay_again = await api.pay(token, order["id"])
    assert [e["code"] for e in pay_again["userErrors"]] == ["INVALID_STATE"]
    # a customer may not ship even their own order
    own_ship = await api.ship(token, order["id"])
    assert [e["code"] for e in own_ship["userErrors"]] == ["FORBIDDEN"]
    current = await api.get_order(order["id"], token)
    assert current is not None
    assert (current["status"], current["version"]) == ("PAID", 2)


@pytest.mark.parametrize("first", [1000, 101, -1])
async def test_page_size_out_of_range_is_bad_user_input(
    api: Api, live_app: LiveAppLike, first: int
) -> None:
    for query, token in (
        ("query($f: Int) { products(first: $f) { edges { cursor } } }", None),
        ("query($f: Int) { myOrders(first: $f) { edges { cursor } } }", live_app.customer_token),
        (
            "query($f: Int) { fulfillmentQueue(first: $f) { edges { cursor } } }",
            live_app.staff_token,
        ),
    ):
        body = await api.execute(query, {"f": first}, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert body["data"] is None
        assert "first" in body["errors"][0]["message"]


async def test_bad_cursors_are_bad_user_input(api: Api, live_app: LiveAppLike) -> None:
    for query, token in (
        ("query($a: String) { products(after: $a) { edges { cursor } } }", None),
        ("query($a: String) { myOrders(after: $a) { edges { cursor } } }", live_app.customer_token),
        (
            "query($a: String) { fulfillmentQueue(after: $a) { edges { cursor } } }",
            live_app.staff_token,
        ),
    ):
        for cursor in ("!!!", "bm90LWEtbnVtYmVy", "\u00e9"):
            body = await api.execute(query, {"a": cursor}, token=token)
            assert error_codes(body) == ["BAD_USER_INPUT"], (query, cursor, body)
