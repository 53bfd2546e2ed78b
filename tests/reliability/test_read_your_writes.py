"""Read-your-writes on the wire: consistencyToken, Shopfront-Consistency, readModel."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveApp

PLACE = """mutation($sku: String!) {
  placeOrder(input: {lines: [{sku: $sku, quantity: 1}]}) {
    order { id status } userErrors { code } consistencyToken
  }
}"""


async def post(
    client: httpx.AsyncClient,
    query: str,
    token: str | None = None,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
    )


@pytest.fixture
async def client(live_app: LiveApp) -> Any:
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=15) as http:
        yield http


async def test_mutation_token_then_consistent_query(live_app: LiveApp, client: Any) -> None:
    response = await post(client, PLACE, live_app.customer_token, {"sku": "NOTE-A5"})
    payload = response.json()["data"]["placeOrder"]
    assert payload["userErrors"] == []
    token = payload["consistencyToken"]
    assert token and token.startswith("sf1.")
    position = int(token.removeprefix("sf1."))

    query = "query($id: ID!) { order(id: $id) { id status } }"
    response = await post(
        client,
        query,
        live_app.customer_token,
        {"id": payload["order"]["id"]},
        headers={"Shopfront-Consistency": token},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["data"]["order"]["status"] == "PLACED"
    assert body["extensions"]["readModel"]["position"] >= position


async def test_every_response_carries_read_model_position(client: Any) -> None:
    for query in ("{ __typename }", "{ products(first: 1) { edges { cursor } } }"):
        body = (await post(client, query)).json()
        read_model = body["extensions"]["readModel"]
        assert isinstance(read_model["position"], int) and read_model["position"] > 0
        assert read_model["lagMs"] >= 0


async def test_token_from_the_future_is_refused_at_once(client: Any) -> None:
    # Beyond the event log's head: no mutation handed it out, so nothing to wait for.
    response = await post(
        client, "{ __typename }", headers={"Shopfront-Consistency": "sf1.999999999"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"] == "consistency token is ahead of the event log"
    assert "data" not in body


async def test_malformed_token_is_a_bad_request(client: Any) -> None:
    response = await post(
        client, "{ __typename }", headers={"Shopfront-Consistency": "not-a-token"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
