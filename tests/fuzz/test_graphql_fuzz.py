"""Schema-driven fuzzing of every query and mutation over real HTTP (Schemathesis).

Schemathesis (hypothesis-graphql underneath) turns ``schema.graphql`` into documents
for each root field: valid ones (positive mode) and ones that break the schema
(negative mode: missing or null required arguments, wrong types). Each is sent to a
running ``shopfront serve`` as an anonymous client, as a customer and as staff, and
every answer must be a clean GraphQL response: no 5xx, a JSON object body, no stack
trace, and no error without an ``extensions.code`` or with ``INTERNAL_SERVER_ERROR``.

Random ids and SKUs alone would never get past "not found", so Schemathesis
dictionaries mix real ones (orders in every state, another customer's order, products,
cursors) into the arguments that take them: the fuzzer also pays, ships, cancels and
restocks real things.

Bounded and repeatable: Hypothesis runs derandomized (a fixed seed), with a fixed number
of examples per operation and identity and no example database, so every run sends the
same documents (only the ids the server minted differ). Problems are collected rather
than raised inside Hypothesis (no shrinking, no flakiness replay): each test reports the
bad documents it sent, ready to paste, with the tail of the server log. Each test also
checks that the fuzzer really ran: all EXAMPLES documents went out, and at least one
schema-valid document was executed (200, ``data``, no ``errors``), or none at all where
the identity may not ask (``REFUSED``).

The server is a dedicated one (loopback, free port, its own copy of the databases), not
the session's ``live_app``: the fuzzer adds products, changes prices and stock, and
places and cancels orders, which on the shared server would change what the other tests
read (catalog order, demo prices, the demo customer's orders).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err

from api.auth import make_token
from tests.conftest import ROOT, TEST_SECRET, fresh_server

# Per operation and identity: 18 operations x 3 identities x EXAMPLES requests in all.
EXAMPLES = 25
TIMEOUT = 10.0
SCHEMA_PATH = ROOT / "schema.graphql"
JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
LEAKS = ("Traceback", 'File "')
IDENTITIES = ("anonymous", "customer", "staff")
PRODUCTS = (("FUZZ-MUG", 1250, 40), ("FUZZ-TEE", 1999, 5), ("FUZZ-CAP", 1800, 0))
# How often an argument that names something gets a real value instead of a random one.
REAL_VALUE_PROBABILITY = 0.5
# Schemathesis dictionary bindings (``<Type>.<field>.<argument path>``) -> dictionary.
BINDINGS = {
    "Query.node.id": "ids",
    "Query.order.id": "orders",
    "Query.product.sku": "skus",
    "Query.*.after": "cursors",
    "Mutation.*.input.orderId": "orders",
    "Mutation.*.input.sku": "skus",
    "Mutation.placeOrder.input.lines[*].sku": "skus",
}

# Root fields an identity may not ask for: every answer must be an error, never data.
REFUSED = {
    ("Query.myOrders", "anonymous"),
    *(
        (f"Query.{field}", identity)
        for field in ("salesDashboard", "fulfillmentQueue", "projections")
        for identity in ("anonymous", "customer")
    ),
}

# Connections whose generated arguments (random ``first`` and ``after``) the resolvers
# almost always refuse with a coded error: how many execute depends on the cursors the
# server minted, so no minimum is asserted for them (they still must answer cleanly).
RARELY_VALID = {"Query.myOrders", "Query.fulfillmentQueue"}

Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def _operations(config: SchemathesisConfig | None = None) -> dict[str, Operation]:
    """Every root query and mutation field of the committed schema, by label."""
    schema = schemathesis.graphql.from_path(SCHEMA_PATH, config=config)
    operations: dict[str, Operation] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations[result.ok().label] = result.ok()
    return operations


LABELS = list(_operations())


@dataclasses.dataclass
class FuzzServer:
    base_url: str
    tokens: dict[str, str | None]
    known: dict[str, list[str]]  # real values, by dictionary name (see BINDINGS)
    log: Path
    process: subprocess.Popen[bytes]


@dataclasses.dataclass
class Stats:
    requests: int = 0
    server_errors: int = 0
    problems: int = 0
    by_status: dict[int, int] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.by_status.items()))
        return (
            f"fuzz: {self.requests} requests, {self.server_errors} server errors, "
            f"{self.problems} bad answers (status codes {statuses or 'none'})"
        )


def _graphql(client: httpx.Client, query: str, token: str | None = None) -> dict[str, Any]:
    """One set-up request that must succeed: its data."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query}, headers=headers)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    for payload in data.values():
        assert not (isinstance(payload, dict) and payload.get("userErrors")), payload
    return data


def _register(client: httpx.Client, email: str) -> tuple[str, str]:
    data = _graphql(
        client,
        f'mutation {{ registerCustomer(input: {{ email: "{email}", name: "Fuzz" }}) '
        "{ token customer { id } userErrors { code } } }",
    )
    payload = data["registerCustomer"]
    return str(payload["token"]), str(payload["customer"]["id"])


def _order(client: httpx.Client, token: str, sku: str = "FUZZ-MUG") -> str:
    data = _graphql(
        client,
        f'mutation {{ placeOrder(input: {{ lines: [{{ sku: "{sku}", quantity: 1 }}] }}) '
        "{ order { id } userErrors { code } } }",
        token,
    )
    return str(data["placeOrder"]["order"]["id"])


def _move(client: httpx.Client, token: str, mutation: str, order_id: str, extra: str = "") -> None:
    _graphql(
        client,
        f'mutation {{ {mutation}(input: {{ orderId: "{order_id}"{extra} }}) '
        "{ userErrors { code } } }",
        token,
    )


def _shop(base_url: str, staff: str) -> tuple[str, dict[str, list[str]]]:
    """A small shop to fuzz against, built over HTTP (much faster than ``shopfront
    seed``): three products, a customer with an order in every state, and another
    customer's order. The customer's token, and the real values to mix into arguments."""
    ship = ', carrier: "DHL", trackingNumber: "FUZZ-1"'
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        for sku, price, stock in PRODUCTS:
            _graphql(
                client,
                f'mutation {{ addProduct(input: {{ sku: "{sku}", name: "{sku} item", '
                f"priceCents: {price}, stock: {stock} }}) {{ userErrors {{ code }} }} }}",
                staff,
            )
        customer, customer_id = _register(client, "fuzz@shopfront.example")
        other, other_id = _register(client, "fuzz-other@shopfront.example")
        placed, paid, shipped, delivered, cancelled = (_order(client, customer) for _ in range(5))
        for order_id in (paid, shipped, delivered):
            _move(client, customer, "payOrder", order_id)
        for order_id in (shipped, delivered):
            _move(client, staff, "shipOrder", order_id, ship)
        _move(client, staff, "deliverOrder", delivered)
        _move(client, customer, "cancelOrder", cancelled)
        others = _order(client, other, "FUZZ-TEE")
        catalog = _graphql(
            client, "{ products(first: 2) { edges { cursor node { id } } } }", staff
        )["products"]["edges"]
        history = _graphql(client, "{ myOrders(first: 2) { edges { cursor } } }", customer)
    orders = [placed, paid, shipped, delivered, cancelled, others]
    known = {
        "orders": orders,
        "skus": [sku for sku, _, _ in PRODUCTS],
        "ids": [*orders, customer_id, other_id, *(edge["node"]["id"] for edge in catalog)],
        "cursors": [
            *(edge["cursor"] for edge in catalog),
            *(edge["cursor"] for edge in history["myOrders"]["edges"]),
        ],
    }
    return customer, known


@pytest.fixture(scope="module")
def fuzz_server(
    template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    """``shopfront serve`` on a free loopback port, on its own copy of the databases."""
    work = tmp_path_factory.mktemp("fuzz")
    with fresh_server(template_dir, work) as (port, process):
        base_url = f"http://127.0.0.1:{port}"
        staff = make_token(TEST_SECRET, "staff-fuzz", "staff", dt.timedelta(hours=1))
        customer, known = _shop(base_url, staff)
        yield FuzzServer(
            base_url=base_url,
            tokens={"anonymous": None, "customer": customer, "staff": staff},
            known=known,
            log=work / "server.log",
            process=process,
        )


@pytest.fixture(scope="module")
def operations(fuzz_server: FuzzServer) -> dict[str, Operation]:
    """The operations, generating with the server's real values as dictionaries."""
    config = SchemathesisConfig.from_dict(
        {
            "dictionaries": {
                name: {"values": values} for name, values in fuzz_server.known.items()
            },
            "parameters": {
                key: {"dictionary": name, "probability": REAL_VALUE_PROBABILITY}
                for key, name in BINDINGS.items()
            },
        }
    )
    return _operations(config)


@pytest.fixture(scope="module")
def stats(request: pytest.FixtureRequest) -> Iterator[Stats]:
    """Counts over the whole module; the summary line goes to the terminal at the end."""
    totals = Stats()
    yield totals
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not totals.requests:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        reporter.write_line("")
        reporter.write_line(totals.summary())


def _problems(response: httpx.Response) -> list[str]:
    """What is wrong with one answer (nothing, for a clean GraphQL response)."""
    found: list[str] = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    text = response.text
    found += [f"body contains {leak!r}" for leak in LEAKS if leak in text]
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type not in (JSON, GRAPHQL_RESPONSE):
        found.append(f"Content-Type {media_type!r}")
    try:
        body = json.loads(text)
    except ValueError:
        return [*found, "body is not JSON"]
    if not isinstance(body, dict):
        return [*found, "body is not a JSON object"]
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        return [*found, "errors is not a list"]
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if code is None:
            found.append(f"error without extensions.code: {error!r}")
        elif code == "INTERNAL_SERVER_ERROR":
            found.append(f"INTERNAL_SERVER_ERROR: {error!r}")
    return found


@dataclasses.dataclass
class Sent:
    """What one operation and identity sent: documents, and schema-valid ones the server
    executed (200, ``data`` and no ``errors``): proof the fuzzer reached the resolvers."""

    requests: int = 0
    executed: int = 0


def _executed(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        response.status_code == 200
        and isinstance(body, dict)
        and isinstance(body.get("data"), dict)
        and not body.get("errors")
    )


def _fuzz(
    operation: Operation, token: str | None, base_url: str, stats: Stats
) -> tuple[list[str], Sent]:
    """Send EXAMPLES generated documents for one operation: the reports of bad answers,
    and what was sent."""
    reports: list[str] = []
    sent = Sent()
    # Each case tagged with whether it is valid against the schema (positive mode).
    cases = operation.as_strategy(GenerationMode.POSITIVE).map(
        lambda case: (case, True)
    ) | operation.as_strategy(GenerationMode.NEGATIVE).map(lambda case: (case, False))
    is_query = operation.label.startswith("Query.")
    methods = st.sampled_from(("POST", "GET") if is_query else ("POST",))
    accepts = st.sampled_from((JSON, GRAPHQL_RESPONSE))
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{base_url}/graphql"

    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=(Phase.generate,),
            # Slow or large examples are expected here (HTTP round trips, big documents).
            suppress_health_check=(
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
                HealthCheck.filter_too_much,
            ),
            print_blob=False,
        )
        @given(case=cases, method=methods, accept=accepts)
        def send(case: tuple[schemathesis.Case[Operation], bool], method: str, accept: str) -> None:
            document = case[0].body
            assert isinstance(document, str), document
            headers = {**auth, "Accept": accept}
            if method == "GET":
                response = client.get(url, params={"query": document}, headers=headers)
            else:
                response = client.post(url, json={"query": document}, headers=headers)
            stats.requests += 1
            sent.requests += 1
            if case[1] and _executed(response):
                sent.executed += 1
            status = response.status_code
            stats.by_status[status] = stats.by_status.get(status, 0) + 1
            if status >= 500:
                stats.server_errors += 1
            found = _problems(response)
            if found:
                stats.problems += 1
                reports.append(
                    f"{method} {url} (Accept: {accept}) -> {status}: {'; '.join(found)}\n"
                    f"--- document ---\n{document}\n"
                    f"--- response ---\n{response.text[:2000]}"
                )

        send()
    return reports, sent


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("label", LABELS)
def test_fuzzed_operation_gets_a_clean_answer(
    label: str,
    identity: str,
    fuzz_server: FuzzServer,
    operations: dict[str, Operation],
    stats: Stats,
) -> None:
    token = fuzz_server.tokens[identity]
    reports, sent = _fuzz(operations[label], token, fuzz_server.base_url, stats)
    if reports:
        tail = fuzz_server.log.read_text(errors="replace")[-4000:]
        pytest.fail(
            f"{len(reports)} bad answer(s) to {label} as {identity}:\n\n"
            + "\n\n".join(reports[:5])
            + f"\n\n--- server log (tail) ---\n{tail}",
            pytrace=False,
        )
    # The fuzzer really ran: every example went out, and the schema-valid ones reached
    # the resolvers (data, no errors) unless this identity may not ask at all.
    assert sent.requests == EXAMPLES, f"{label} as {identity}: sent {sent.requests}"
    if (label, identity) in REFUSED:
        assert sent.executed == 0, f"{label} answered {identity} with data: {sent}"
    elif label not in RARELY_VALID:
        assert sent.executed >= 1, f"no valid {label} document executed as {identity}: {sent}"
