"""Small end-to-end clients for the running app: GraphQL over HTTP (httpx) and over
WebSocket (``graphql-transport-ws`` and the legacy ``graphql-ws`` protocol).

Every HTTP response goes through :func:`check_response`, so no test can silently
accept a 500 or a leaked stack trace.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

TIMEOUT = 10.0
"""Upper bound of every single wait (HTTP request, WebSocket message)."""

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEGACY_WS = Subprotocol("graphql-ws")

Json = dict[str, Any]


class LiveAppLike(Protocol):
    """What the session fixture ``live_app`` (tests/conftest.py) provides."""

    base_url: str
    ws_url: str
    customer_token: str
    staff_token: str
    customer_id: str
    env: dict[str, str]


def check_text(text: str) -> None:
    """No stack trace, and no GraphQL error the server did not expect (a resolver bug
    shows as ``INTERNAL_SERVER_ERROR`` even when the status is 200)."""
    assert "Traceback" not in text, text[:2000]
    assert "INTERNAL_SERVER_ERROR" not in text, text[:2000]


def check_response(response: httpx.Response) -> None:
    """Whatever the input, the app never answers 500 nor shows a stack trace."""
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    check_text(response.text)


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_codes(body: Json) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


class GraphQLError(AssertionError):
    """A response that was expected to be error-free carried errors."""


class Api:
    """GraphQL over HTTP against the live app."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        check_response(response)
        return response

    async def post(
        self,
        query: str,
        variables: Json | None = None,
        *,
        token: str | None = None,
        operation_name: str | None = None,
        accept: str = JSON,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: Json = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        return await self.request(
            "POST",
            "/graphql",
            json=body,
            headers={"Accept": accept, **bearer(token), **(headers or {})},
        )

    async def execute(
        self,
        query: str,
        variables: Json | None = None,
        *,
        token: str | None = None,
        operation_name: str | None = None,
    ) -> Json:
        """The whole response body (``data`` and/or ``errors``); status must be 200."""
        response = await self.post(query, variables, token=token, operation_name=operation_name)
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.headers["content-type"].startswith(JSON), response.headers
        return cast(Json, response.json())

    async def data(
        self, query: str, variables: Json | None = None, *, token: str | None = None
    ) -> Json:
        """``data`` of a response that must have no errors."""
        body = await self.execute(query, variables, token=token)
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"], indent=2))
        return cast(Json, body["data"])

    # -- domain helpers ------------------------------------------------------------------

    async def register_customer(self, name: str = "E2E Customer") -> tuple[str, str]:
        """A fresh customer: (token, global customer id)."""
        email = f"{unique('e2e')}@example.com"
        data = await self.data(
            """mutation($input: RegisterCustomerInput!) {
                 registerCustomer(input: $input) {
                   token customer { id email name } userErrors { field message code }
                 }
               }""",
            {"input": {"email": email, "name": name}},
        )
        payload = data["registerCustomer"]
        assert payload["userErrors"] == [], payload
        assert payload["customer"]["email"] == email
        assert isinstance(payload["token"], str) and payload["token"]
        return payload["token"], payload["customer"]["id"]

    async def add_product(
        self,
        staff_token: str,
        *,
        name: str | None = None,
        price_cents: int = 1000,
        stock: int = 10,
        sku: str | None = None,
    ) -> Json:
        sku = sku or unique("E2E").upper()
        data = await self.data(
            """mutation($input: AddProductInput!) {
                 addProduct(input: $input) {
                   product { id sku name priceCents currency stockAvailable inStock }
                   userErrors { field message code }
                 }
               }""",
            {
                "input": {
                    "sku": sku,
                    "name": name or f"E2E product {sku}",
                    "priceCents": price_cents,
                    "stock": stock,
                    "description": "made by an end-to-end test",
                }
            },
            token=staff_token,
        )
        payload = data["addProduct"]
        assert payload["userErrors"] == [], payload
        product = cast(Json, payload["product"])
        assert product["sku"] == sku
        return product

    async def order_mutation(
        self, name: str, input_type: str, input: Json, *, token: str | None, fields: str = ""
    ) -> Json:
        """Run one order mutation; returns its payload (``order`` and ``userErrors``)."""
        data = await self.data(
            f"""mutation($input: {input_type}!) {{
                  {name}(input: $input) {{
                    order {{ {fields or ORDER_FIELDS} }}
                    userErrors {{ field message code }}
                  }}
                }}""",
            {"input": input},
            token=token,
        )
        return cast(Json, data[name])

    async def place_order(self, token: str, lines: list[tuple[str, int]]) -> Json:
        payload = await self.order_mutation(
            "placeOrder",
            "PlaceOrderInput",
            {
                "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
                "idempotencyKey": unique("idem"),
            },
            token=token,
        )
        assert payload["userErrors"] == [], payload
        return cast(Json, payload["order"])

    async def pay(self, token: str | None, order_id: str) -> Json:
        return await self.order_mutation(
            "payOrder", "PayOrderInput", {"orderId": order_id}, token=token
        )

    async def ship(
        self, token: str | None, order_id: str, carrier: str = "DHL", tracking: str = "TRK-E2E"
    ) -> Json:
        return await self.order_mutation(
            "shipOrder",
            "ShipOrderInput",
            {"orderId": order_id, "carrier": carrier, "trackingNumber": tracking},
            token=token,
        )

    async def deliver(self, token: str | None, order_id: str) -> Json:
        return await self.order_mutation(
            "deliverOrder", "DeliverOrderInput", {"orderId": order_id}, token=token
        )

    async def cancel(self, token: str | None, order_id: str, reason: str = "e2e") -> Json:
        return await self.order_mutation(
            "cancelOrder", "CancelOrderInput", {"orderId": order_id, "reason": reason}, token=token
        )

    async def stock_of(self, sku: str) -> int:
        data = await self.data(
            "query($sku: String!) { product(sku: $sku) { stockAvailable } }", {"sku": sku}
        )
        return int(data["product"]["stockAvailable"])

    async def get_order(self, order_id: str, token: str | None) -> Json | None:
        data = await self.data(
            f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}",
            {"id": order_id},
            token=token,
        )
        return cast("Json | None", data["order"])


ORDER_FIELDS = """
  id status version customerId placedAt updatedAt itemCount totalCents currency
  lines { sku productName quantity unitPriceCents lineTotalCents }
  payment { status amountCents paidAt refundedAt }
  shipment { carrier trackingNumber status shippedAt deliveredAt }
  timeline { status at }
"""

ORDER_EVENT_FIELDS = f"event version occurredAt order {{ {ORDER_FIELDS} }}"


@asynccontextmanager
async def api_client(base_url: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, trust_env=False) as http:
        yield Api(http)


# -- WebSocket ---------------------------------------------------------------------------


class _WsClient:
    """What both protocols share: JSON frames, bounded waits, and a per-operation
    buffer, so one connection can carry several operations whose messages interleave."""

    skip_types: frozenset[str] = frozenset()

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0
        self._buffer: dict[str, deque[Json]] = defaultdict(deque)

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    async def send(self, message: Json) -> None:
        await self.ws.send(json.dumps(message))

    async def _on_skipped(self, message: Json) -> None:
        """Handle a protocol-level message (ping, keep-alive) that tests never see."""

    async def receive(self, timeout: float = TIMEOUT) -> Json:
        """The next message not about an operation someone is waiting for by id."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = max(deadline - loop.time(), 0.001)
            raw = await asyncio.wait_for(self.ws.recv(), remaining)
            check_text(str(raw))
            message = json.loads(raw)
            assert isinstance(message, dict), message
            if message.get("type") in self.skip_types:
                await self._on_skipped(message)
                continue
            return cast(Json, message)

    async def receive_for(self, op_id: str, timeout: float = TIMEOUT) -> Json:
        """The next message of operation ``op_id``; other operations' messages are kept."""
        if self._buffer[op_id]:
            return self._buffer[op_id].popleft()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.receive(max(deadline - loop.time(), 0.001))
            if message.get("id") == op_id:
                return message
            other = message.get("id")
            assert isinstance(other, str), f"message without an operation id: {message}"
            self._buffer[other].append(message)

    async def very_next(self, *op_ids: str, timeout: float = TIMEOUT) -> dict[str, Json]:
        """The very next messages on the connection: one for each of ``op_ids`` (in any
        order), and nothing else before or in between.

        Called after a marker change (a later mutation) that each of ``op_ids`` must
        hear: the server sends a connection's messages in the order of the changes, so a
        duplicate, a stray message, or one for an operation that was stopped or refused
        would have to arrive before the marker. Deterministic, unlike waiting a while
        for nothing to come."""
        early = {op: list(queue) for op, queue in self._buffer.items() if queue}
        assert not early, f"messages before the marker: {early}"
        got: dict[str, Json] = {}
        while len(got) < len(op_ids):
            message = await self.receive(timeout)
            op_id = message.get("id")
            assert op_id in op_ids and op_id not in got, (
                f"expected only the marker for {op_ids}, got {message} (after {got})"
            )
            got[str(op_id)] = message
        return got


class TransportWsClient(_WsClient):
    """The ``graphql-transport-ws`` protocol: connection_init/ack, subscribe, next,
    error, complete, ping/pong."""

    skip_types = frozenset({"ping", "pong"})

    async def _on_skipped(self, message: Json) -> None:
        if message["type"] == "ping":
            await self.send({"type": "pong"})

    async def init(self, token: str | None) -> Json:
        """Send connection_init; returns the server's answer (connection_ack)."""
        await self.send({"type": "connection_init", "payload": bearer(token)})
        return await self.receive()

    async def subscribe(self, query: str, variables: Json | None = None) -> str:
        op_id = self._next_id()
        payload: Json = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})
        return op_id

    async def next_data(self, op_id: str, timeout: float = TIMEOUT) -> Json:
        """The ``data`` of the next ``next`` message of ``op_id``; fails on anything else."""
        message = await self.receive_for(op_id, timeout)
        assert message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        return cast(Json, message["payload"]["data"])

    async def errors_of(self, op_id: str) -> list[Json]:
        """The errors the server answers ``op_id`` with; fails if it sends any data.

        Either an ``error`` message, or a ``next`` with errors and null data and then
        ``complete``."""
        message = await self.receive_for(op_id)
        if message["type"] == "error":
            return cast(list[Json], message["payload"])
        assert message["type"] == "next", message
        assert message["payload"].get("data") is None, message
        errors = cast(list[Json], message["payload"].get("errors"))
        assert errors, message
        done = await self.receive_for(op_id)
        assert done["type"] == "complete", done
        return errors

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})


@asynccontextmanager
async def transport_ws(ws_url: str, token: str | None) -> AsyncIterator[TransportWsClient]:
    """A connected and acknowledged graphql-transport-ws client."""
    async with connect(
        ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT, close_timeout=2
    ) as ws:
        assert ws.subprotocol == TRANSPORT_WS
        client = TransportWsClient(ws)
        ack = await client.init(token)
        assert ack["type"] == "connection_ack", ack
        yield client


class LegacyWsClient(_WsClient):
    """The legacy ``graphql-ws`` (subscriptions-transport-ws) protocol: connection_init,
    connection_ack, ka, start, data, error, complete, stop."""

    skip_types = frozenset({"ka"})

    async def init(self, token: str | None) -> Json:
        await self.send({"type": "connection_init", "payload": bearer(token)})
        return await self.receive()

    async def start(self, query: str, variables: Json | None = None) -> str:
        op_id = self._next_id()
        payload: Json = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "start", "payload": payload})
        return op_id

    async def next_data(self, op_id: str, timeout: float = TIMEOUT) -> Json:
        message = await self.receive_for(op_id, timeout)
        assert message["type"] == "data", message
        assert not message["payload"].get("errors"), message
        return cast(Json, message["payload"]["data"])

    async def stop(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "stop"})


@asynccontextmanager
async def legacy_ws(ws_url: str, token: str | None) -> AsyncIterator[LegacyWsClient]:
    """A connected and acknowledged legacy graphql-ws client."""
    async with connect(
        ws_url, subprotocols=[LEGACY_WS], proxy=None, open_timeout=TIMEOUT, close_timeout=2
    ) as ws:
        assert ws.subprotocol == LEGACY_WS
        client = LegacyWsClient(ws)
        ack = await client.init(token)
        assert ack["type"] == "connection_ack", ack
        yield client


ORDER_STATUS = f"""subscription($id: ID!) {{
  orderStatus(orderId: $id) {{ {ORDER_EVENT_FIELDS} }}
}}"""
MY_ORDERS = f"subscription {{ myOrders {{ {ORDER_EVENT_FIELDS} }} }}"


async def follow_my_orders(client: TransportWsClient, live_order_id: str) -> str:
    """Subscribe to ``myOrders`` and return its operation id once it is live.

    graphql-transport-ws has no per-operation acknowledgement, so a barrier is used:
    an ``orderStatus`` subscription to ``live_order_id`` (one of the caller's orders),
    started after ``myOrders`` on the same connection. Its Snapshot needs a database
    read; by the time it arrives the ``myOrders`` subscription is registered too.
    The barrier operation is completed before returning.
    """
    my_orders = await client.subscribe(MY_ORDERS)
    barrier = await client.subscribe(ORDER_STATUS, {"id": live_order_id})
    snapshot = await client.next_data(barrier)
    assert snapshot["orderStatus"]["event"] == "Snapshot", snapshot
    await client.complete(barrier)
    return my_orders
