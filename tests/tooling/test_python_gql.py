"""Python's gql client (4.4, pinned in requirements.lock), as a Python frontend or script
uses it against a running dev server: it fetches the schema by introspection (and the
schema it builds is schema.graphql), validates and runs queries and mutations over HTTP,
and follows an order's status over both WebSocket protocols."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from graphql import build_schema, lexicographic_sort_schema, print_schema

from tests.conftest import LiveApp
from tests.e2e.client import unique

ROOT = Path(__file__).resolve().parents[2]
PLACE = gql("""mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } userErrors { code } } }""")
PAY = gql("""mutation($input: PayOrderInput!) {
  payOrder(input: $input) { order { status } userErrors { code } } }""")
FOLLOW = gql("""subscription($id: ID!) {
  orderStatus(orderId: $id) { event version order { status } } }""")


def _place() -> GraphQLRequest:
    lines = [{"sku": "MUG-001", "quantity": 1}]
    return GraphQLRequest(
        PLACE, variable_values={"input": {"lines": lines, "idempotencyKey": unique("gql")}}
    )


def _http(live_app: LiveApp) -> HTTPXAsyncTransport:
    return HTTPXAsyncTransport(
        url=f"{live_app.base_url}/graphql",
        headers={"Authorization": f"Bearer {live_app.customer_token}"},
        timeout=30,
    )


async def test_gql_fetches_the_schema_and_runs_a_mutation(live_app: LiveApp) -> None:
    client = Client(transport=_http(live_app), fetch_schema_from_transport=True)
    async with client as session:
        schema = session.client.schema
        assert schema is not None
        exported = build_schema((ROOT / "schema.graphql").read_text())
        assert print_schema(lexicographic_sort_schema(schema)) == print_schema(
            lexicographic_sort_schema(exported)
        )
        # gql validates against the fetched schema before sending.
        with pytest.raises(Exception, match="Cannot query field 'nosuchfield'"):
            await session.execute(gql("{ products { nosuchfield } }"))
        placed = await session.execute(
            PLACE,
            variable_values={
                "input": {
                    "lines": [{"sku": "MUG-001", "quantity": 1}],
                    "idempotencyKey": unique("g"),
                }
            },
        )
    assert placed["placeOrder"]["order"]["status"] == "PLACED"


@pytest.mark.parametrize(
    "subprotocol",
    [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL],
)
async def test_gql_follows_an_order_over_websocket(live_app: LiveApp, subprotocol: str) -> None:
    async with Client(transport=_http(live_app)) as http:
        placed = await http.execute(
            PLACE,
            variable_values={
                "input": {
                    "lines": [{"sku": "MUG-001", "quantity": 1}],
                    "idempotencyKey": unique("g"),
                }
            },
        )
        order_id = placed["placeOrder"]["order"]["id"]
        ws = WebsocketsTransport(
            url=live_app.base_url.replace("http", "ws") + "/graphql",
            init_payload={"Authorization": f"Bearer {live_app.customer_token}"},
            subprotocols=[subprotocol],
        )
        seen: list[dict[str, Any]] = []
        async with Client(transport=ws) as live:
            updates = live.subscribe(GraphQLRequest(FOLLOW, variable_values={"id": order_id}))
            first = await asyncio.wait_for(anext(updates), 10)
            seen.append(first["orderStatus"])
            paid = await http.execute(
                GraphQLRequest(PAY, variable_values={"input": {"orderId": order_id}})
            )
            assert paid["payOrder"]["userErrors"] == []
            second = await asyncio.wait_for(anext(updates), 10)
            seen.append(second["orderStatus"])
            await updates.aclose()
    assert [(s["event"], s["order"]["status"]) for s in seen] == [
        ("Snapshot", "PLACED"),
        ("OrderPaid", "PAID"),
    ]
