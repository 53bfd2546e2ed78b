"""What a hostile web page can make a visitor's browser do: nothing. No mutation over
GET, no "simple" cross-site POST (form or text/plain), CORS only for the allow-listed
origin, WebSocket handshakes only from allowed origins; and the usual security headers,
with no caching of API answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.e2e.client import GRAPHQL_RESPONSE, JSON, TIMEOUT, TRANSPORT_WS, bearer, unique

from .support import EVIL_ORIGIN, SHOP_ORIGIN, Server, hs256, request_error

pytestmark = pytest.mark.timeout(150)

STAFF = hs256("browser-staff", "staff")
ADD_PRODUCT = """mutation($input: AddProductInput!) {
  addProduct(input: $input) { product { sku } userErrors { code } }
}"""


PRODUCT = "query($sku: String!) { product(sku: $sku) { sku } }"


def add_product_variables(sku: str) -> str:
    return json.dumps({"input": {"sku": sku, "name": "CSRF", "priceCents": 1, "stock": 1}})


def add_product_body(sku: str) -> str:
    return f'{{"query": {json.dumps(ADD_PRODUCT)}, "variables": {add_product_variables(sku)}}}'


@pytest.fixture
async def http(dev_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=dev_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as client:
        yield client


async def product_exists(http: httpx.AsyncClient, sku: str) -> bool:
    response = await http.post(
        "/graphql",
        json={
            "query": "query($sku: String!) { product(sku: $sku) { sku } }",
            "variables": {"sku": sku},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["product"] is not None


async def test_a_mutation_over_get_is_405_and_changes_nothing(http: httpx.AsyncClient) -> None:
    sku = unique("GET").upper()
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = await http.get(
            "/graphql",
            params={"query": ADD_PRODUCT, "variables": add_product_variables(sku)},
            headers={"Accept": accept, **bearer(STAFF)},
        )
        request_error(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers.get("allow") == "POST", response.headers
    assert not await product_exists(http, sku)
    # the same over POST does run (so the refusal above was about the method)
    response = await http.post(
        "/graphql",
        content=add_product_body(sku),
        headers={"Content-Type": JSON, **bearer(STAFF)},
    )
    assert response.json()["data"]["addProduct"]["product"] == {"sku": sku}, response.text
    assert await product_exists(http, sku)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
    ],
)
async def test_simple_cross_site_posts_are_415(http: httpx.AsyncClient, content_type: str) -> None:
    """The content types a form or a no-preflight fetch can send are refused, whatever
    the body looks like: a forged request never gets past the preflight."""
    sku = unique("CSRF").upper()
    body = add_product_body(sku)
    if content_type.startswith("application/x-www-form-urlencoded"):
        params = {"query": ADD_PRODUCT, "variables": add_product_variables(sku)}
        body = str(httpx.QueryParams(params))
    elif content_type.startswith("multipart/"):
        disposition = 'Content-Disposition: form-data; name="operations"'
        body = f"--xyz\r\n{disposition}\r\n\r\n{body}\r\n--xyz--\r\n"
    response = await http.post(
        "/graphql",
        content=body.encode(),
        headers={"Content-Type": content_type, "Origin": EVIL_ORIGIN, **bearer(STAFF)},
    )
    request_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "access-control-allow-origin" not in response.headers
    assert not await product_exists(http, sku)


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_only_for_the_allowed_origin(http: httpx.AsyncClient) -> None:
    response = await http.options("/graphql", headers={"Origin": SHOP_ORIGIN, **PREFLIGHT})
    assert response.status_code == 200, response.text
    assert response.headers.get("access-control-allow-origin") == SHOP_ORIGIN, response.headers
    assert "POST" in response.headers.get("access-control-allow-methods", "")
    allowed_headers = response.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers

    for origin in (EVIL_ORIGIN, "https://shop.example.evil.example", "null"):
        response = await http.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert "access-control-allow-origin" not in response.headers, (origin, response.headers)
        assert response.status_code >= 400, (origin, response.status_code)

    # the actual requests: readable by the shop's pages only
    query = {"query": "{ __typename }"}
    response = await http.post("/graphql", json=query, headers={"Origin": SHOP_ORIGIN})
    assert response.headers.get("access-control-allow-origin") == SHOP_ORIGIN
    response = await http.post("/graphql", json=query, headers={"Origin": EVIL_ORIGIN})
    assert "access-control-allow-origin" not in response.headers, response.headers
    assert response.headers.get("access-control-allow-origin") != "*"


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("x-frame-options") == "DENY", headers
    assert headers.get("referrer-policy") in ("no-referrer", "same-origin", "strict-origin"), (
        headers
    )
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, csp
    assert "frame-ancestors 'none'" in csp, csp


async def test_security_headers_and_no_caching(http: httpx.AsyncClient) -> None:
    responses = [
        await http.post("/graphql", json={"query": "{ __typename }"}),
        await http.get("/graphql", params={"query": "{ __typename }"}),
        await http.post(
            "/graphql", json={"query": "{ nope }"}, headers={"Accept": GRAPHQL_RESPONSE}
        ),
        await http.post("/graphql", content=b"{", headers={"Content-Type": JSON}),
        await http.post("/graphql", json={"query": "{ me { id } }"}, headers=bearer("bad")),
        await http.post(
            "/graphql",
            json={"query": "{ me { id } }"},
            headers=bearer(hs256("cached-customer")),
        ),
    ]
    for response in responses:
        assert response.headers["content-type"].split(";")[0] in (JSON, GRAPHQL_RESPONSE)
        assert_security_headers(response)
        assert "no-store" in response.headers.get("cache-control", ""), response.headers

    # The GraphiQL page (dev only): an HTML page that must not be framed either.
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    assert_security_headers(page)
    assert "no-store" in page.headers.get("cache-control", ""), page.headers


async def _ws_init(server: Server, origin: str | None) -> str:
    """Open a WebSocket (with this Origin, or none) and send connection_init; returns the
    type of the first answer."""
    async with connect(
        server.ws_url,
        subprotocols=[TRANSPORT_WS],
        proxy=None,
        open_timeout=TIMEOUT,
        origin=None if origin is None else Origin(origin),
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(hs256("ws-o"))}))
        message = json.loads(await ws.recv(decode=True))
        return str(message["type"])


async def test_websocket_origins(dev_server: Server) -> None:
    for origin in (EVIL_ORIGIN, "https://shop.example.evil.example", "http://localhost.evil:1"):
        with pytest.raises(InvalidStatus) as refused:
            await _ws_init(dev_server, origin)
        assert refused.value.response.status_code == 403, origin
    assert await _ws_init(dev_server, SHOP_ORIGIN) == "connection_ack"
    assert await _ws_init(dev_server, None) == "connection_ack"  # not a browser
    same_origin = dev_server.base_url  # a page served by us (GraphiQL)
    assert await _ws_init(dev_server, same_origin) == "connection_ack"
