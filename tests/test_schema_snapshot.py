"""schema.graphql is exported from code; any drift between the two fails here."""

from __future__ import annotations

from pathlib import Path

from api.graphql.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_graphql_matches_the_code() -> None:
    exported = export_sdl()
    committed = SCHEMA_FILE.read_text()
    assert committed == exported, (
        "schema.graphql is out of date: run `make schema` and review the diff"
    )


def test_contract_operations_are_in_the_schema() -> None:
    sdl = export_sdl()
    for operation in (
        "node(id: ID!)",
        "me:",
        "products(",
        "product(sku: String!)",
        "myOrders(",
        "order(id: ID!)",
        "salesDashboard:",
        "fulfillmentQueue(",
        "projections:",
        "registerCustomer(",
        "addProduct(",
        "restockProduct(",
        "changeProductPrice(",
        "placeOrder(",
        "payOrder(",
        "cancelOrder(",
        "shipOrder(",
        "deliverOrder(",
        "orderStatus(",
        "orderId: ID!",
        "myOrders:",
    ):
        assert operation in sdl, operation
