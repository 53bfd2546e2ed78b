"""A seeded shop on a real server, and both answers to a query from it: the Strawberry
executor's (dev header ``Shopfront-Compiled-Reads: off``) and the compiled path's.

One server answers both, so both read the same rows at the same read-model position and
carry the same ``extensions.readModel``: any difference in bytes is the executor's. The
response cache is off (the second request must execute too); the first request of a
document is the fallback one, which also parses and validates it (the compiled path runs
only documents already validated, with their limits).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, OperationType, parse

from api.auth import make_token
from api.http.operation import COMPILED_READS_HEADER
from tests.conftest import (
    ROOT,
    TEST_SECRET,
    free_port,
    fresh_settings,
    server_env,
    start_server,
    stop_server,
)

HOUR = dt.timedelta(hours=1)
# Orders in every state (the seed's random lifecycles), repeatably.
SEED = ("--customers", "4", "--products", "8", "--orders", "30", "--random-seed", "7")


@dataclasses.dataclass
class Shop:
    url: str
    client: httpx.Client
    tokens: dict[str, str | None]  # anonymous, customer, other customer, staff
    order_ids: list[str]  # global ids: the customer's, then the other customer's
    product_ids: list[str]
    customer_ids: list[str]
    skus: list[str]
    metrics_token: str | None = None

    def post(self, body: dict[str, Any], token: str | None, *, compiled: bool) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if not compiled:
            headers[COMPILED_READS_HEADER] = "off"
        return self.client.post(self.url + "/graphql", json=body, headers=headers)

    def counts(self) -> dict[str, float]:
        """shopfront_graphql_operations_total by path."""
        found = {}
        headers = (
            {} if self.metrics_token is None else {"Authorization": f"Bearer {self.metrics_token}"}
        )
        for line in self.client.get(self.url + "/metrics", headers=headers).text.splitlines():
            if line.startswith("shopfront_graphql_operations_total{"):
                labels, _, value = line.partition("} ")
                found[labels.split('"')[1]] = float(value)
        return found

    def both(self, body: dict[str, Any], token: str | None) -> tuple[httpx.Response, bool]:
        """The fallback and the compiled answer, which must be the same bytes; and whether
        the second took the compiled path."""
        before = self.counts().get("compiled", 0)
        compiled = self.same(body, token)
        return compiled, self.counts().get("compiled", 0) > before

    def same(self, body: dict[str, Any], token: str | None) -> httpx.Response:
        """The compiled answer, after checking it is the fallback's bytes."""
        fallback = self.post(body, token, compiled=False)
        compiled = self.post(body, token, compiled=True)
        assert (compiled.status_code, compiled.content) == (
            fallback.status_code,
            fallback.content,
        ), f"{body}\nfallback: {fallback.content!r}\ncompiled: {compiled.content!r}"
        assert compiled.headers["content-type"] == fallback.headers["content-type"]
        return compiled


def client_operations(kind: OperationType) -> list[tuple[str, OperationDefinitionNode]]:
    """(document text, operation) of every named operation of this kind in the TypeScript
    client. Fragments may live in another file of the same folder (orders.graphql's do
    not)."""
    found = []
    for path in sorted((ROOT / "examples/typescript-client/src").rglob("*.graphql")):
        text = path.read_text()
        for definition in parse(text).definitions:
            if (
                isinstance(definition, OperationDefinitionNode)
                and definition.operation == kind
                and definition.name is not None
            ):
                found.append((text, definition))
    return found


def _ids(db: Path) -> tuple[list[str], list[str]]:
    """Customers with the most orders first, and their order ids (raw)."""
    with sqlite3.connect(db / "write.db") as conn:
        customers = [
            row[0]
            for row in conn.execute(
                "SELECT customer_id FROM orders GROUP BY customer_id ORDER BY count(*) DESC"
            )
        ]
        orders = [
            row[0]
            for customer in customers[:2]
            for row in conn.execute(
                "SELECT id FROM orders WHERE customer_id = ? ORDER BY id LIMIT 3", (customer,)
            )
        ]
    return customers, orders


def _global(type_name: str, raw: str) -> str:
    from api.graphql.ids import to_global_id

    return to_global_id(type_name, raw)


def seeded_shop(template: Path, work: Path, **env: str) -> Iterator[Shop]:
    settings = fresh_settings(template, work / "db")
    full_env = {
        **server_env(settings.write_database_url, settings.read_database_url),
        "SHOPFRONT_RESPONSE_CACHE_MB": "0",
        **env,
    }
    subprocess.run(
        [sys.executable, "-m", "api", "seed", *SEED],
        cwd=ROOT,
        env=full_env,
        check=True,
        capture_output=True,
    )
    customers, orders = _ids(work / "db")
    with sqlite3.connect(work / "db" / "read.db") as conn:
        products = conn.execute("SELECT product_id, sku FROM catalog_products").fetchall()
    port = free_port()
    process = start_server(full_env, port, work / "server.log")
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            yield Shop(
                url=f"http://127.0.0.1:{port}",
                client=client,
                tokens={
                    "anonymous": None,
                    "customer": make_token(TEST_SECRET, customers[0], "customer", HOUR),
                    "other customer": make_token(TEST_SECRET, customers[1], "customer", HOUR),
                    "staff": make_token(TEST_SECRET, "staff-1", "staff", HOUR),
                },
                order_ids=[_global("Order", raw) for raw in orders],
                product_ids=[_global("Product", raw) for raw, _ in products[:3]],
                customer_ids=[_global("Customer", raw) for raw in customers[:2]],
                skus=[sku for _, sku in products[:3]],
                metrics_token=env.get("SHOPFRONT_METRICS_TOKEN"),
            )
    finally:
        stop_server(process)
