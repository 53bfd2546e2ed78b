"""SHOPFRONT_ENV=prod over WebSocket (graphql-transport-ws), as over HTTP: introspection
refused, an ``orderStatus`` subscription with a token works, an internal error is masked
to a request id. A dedicated prod server (its own databases): the shared ``prod_server``
keeps an empty catalog that other tests rely on, and this test adds to it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from graphql import get_introspection_query

from api.auth import make_token
from tests.conftest import TEST_SECRET, fresh_server
from tests.e2e.client import TIMEOUT, api_client, transport_ws

pytestmark = pytest.mark.timeout(120)

ORDER_STATUS = """subscription($id: ID!) {
  orderStatus(orderId: $id) { event version order { id status } }
}"""
LEAKS = ("order_detail", "no such table", "sqlite", "Traceback", "Error:")


@contextmanager
def read_table_gone(read_db: Path, table: str) -> Iterator[None]:
    """An infrastructure failure: a read table disappears (renamed) under the server."""
    with sqlite3.connect(read_db, timeout=10) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
    try:
        yield
    finally:
        with sqlite3.connect(read_db, timeout=10) as conn:
            conn.execute(f"ALTER TABLE {table}_gone RENAME TO {table}")


async def test_prod_mode_over_websocket(template_dir: Path, tmp_path: Path) -> None:
    staff = make_token(TEST_SECRET, "staff-prod-ws", "staff", dt.timedelta(hours=1))
    with fresh_server(template_dir, tmp_path, SHOPFRONT_ENV="prod") as (port, _):
        base_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql"
        async with api_client(base_url) as api:
            sku = (await api.add_product(staff, price_cents=1500, stock=5))["sku"]
            token, _ = await api.register_customer("Prod WS customer")
            order = await api.place_order(token, [(sku, 1)])

            async with transport_ws(ws_url, token) as ws:
                # Introspection: refused over the socket too, whatever the document.
                for query in (
                    "{ __schema { types { name } } }",
                    '{ __type(name: "Order") { fields { name } } }',
                    get_introspection_query(descriptions=True),
                ):
                    errors = await ws.errors_of(await ws.subscribe(query))
                    codes = {error["extensions"]["code"] for error in errors}
                    assert codes == {"GRAPHQL_VALIDATION_FAILED"}, errors
                    assert "introspection" in errors[0]["message"].lower(), errors
                    assert "Mutation" not in json.dumps(errors), errors
                # __typename is not introspection of the schema.
                op = await ws.subscribe("{ __typename }")
                assert await ws.next_data(op) == {"__typename": "Query"}
                assert (await ws.receive_for(op))["type"] == "complete"

                # A subscription with a token works: Snapshot, then the payment.
                op = await ws.subscribe(ORDER_STATUS, {"id": order["id"]})
                snapshot = (await ws.next_data(op))["orderStatus"]
                assert (snapshot["event"], snapshot["order"]["status"]) == ("Snapshot", "PLACED")
                assert (await api.pay(token, order["id"]))["userErrors"] == []
                paid = (await ws.very_next(op))[op]["payload"]["data"]["orderStatus"]
                assert (paid["event"], paid["version"], paid["order"]["status"]) == (
                    "OrderPaid",
                    2,
                    "PAID",
                )
                await ws.complete(op)

                # An internal error (the order's read table gone): masked to a request id.
                with read_table_gone(tmp_path / "db" / "read.db", "order_detail"):
                    op = await ws.subscribe(ORDER_STATUS, {"id": order["id"]})
                    # Read raw: the client's own check refuses internal errors.
                    raw = str(await asyncio.wait_for(ws.ws.recv(), TIMEOUT))
                message = json.loads(raw)
                assert message["id"] == op, message
                for leak in LEAKS:
                    assert leak.lower() not in raw.lower(), raw
                errors = (
                    message["payload"]
                    if message["type"] == "error"
                    else message["payload"]["errors"]
                )
                [error] = errors
                assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR", message
                request_id = error["extensions"]["requestId"]
                assert isinstance(request_id, str) and request_id in error["message"], error

                # The table is back: so is the subscription.
                op = await ws.subscribe(ORDER_STATUS, {"id": order["id"]})
                again = (await ws.next_data(op))["orderStatus"]
                assert (again["event"], again["order"]["status"]) == ("Snapshot", "PAID")
        log = (tmp_path / "server.log").read_text(errors="replace")
        assert request_id in log and "order_detail" in log, log[-3000:]
