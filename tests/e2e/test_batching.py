"""Batched operations: a JSON array of operations POSTed at once (Apollo Client's
BatchHttpLink) is answered with the array of their answers, in order, each as if sent
alone; at most SHOPFRONT_MAX_BATCH_OPERATIONS (10) per batch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import required_tools
from tests.conftest import LiveApp
from tests.e2e.client import JSON, unique

APOLLO = Path(__file__).resolve().parents[1] / "tooling" / "apollo"
PRODUCT = "query($sku: String!) { product(sku: $sku) { sku stockAvailable } }"


async def _post(live_app: LiveApp, body: object, token: str | None = None) -> httpx.Response:
    headers = {"Accept": JSON}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=live_app.base_url, trust_env=False, timeout=30) as h:
        return await h.post("/graphql", json=body, headers=headers)


async def test_a_batch_is_answered_in_order_each_as_if_alone(live_app: LiveApp) -> None:
    key = unique("batch")
    place = """mutation($input: PlaceOrderInput!) {
      placeOrder(input: $input) { order { status } userErrors { code } } }"""
    batch = [
        {"query": PRODUCT, "variables": {"sku": "MUG-001"}},
        {"query": place, "variables": {"input": {"lines": [{"sku": "MUG-001", "quantity": 1}],
                                                 "idempotencyKey": key}}},
        {"query": "{ nosuchfield }"},
        {"query": PRODUCT, "variables": {"sku": "MUG-001"}},
        {"query": "{ products(first: 1) { edges { node { sku } } } }", "operationName": None},
    ]  # fmt: skip
    response = await _post(live_app, batch, live_app.customer_token)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert isinstance(answers, list) and len(answers) == len(batch)
    before = answers[0]["data"]["product"]["stockAvailable"]
    assert answers[1]["data"]["placeOrder"] == {"order": {"status": "PLACED"}, "userErrors": []}
    assert "data" not in answers[2]
    assert answers[2]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # In order: the read after the mutation sees it (read-your-writes within the batch).
    assert answers[3]["data"]["product"]["stockAvailable"] == before - 1
    assert answers[4]["data"]["products"]["edges"]
    assert all("readModel" in answer["extensions"] for answer in answers)


@pytest.mark.parametrize("size", [0, 11])
async def test_a_batch_holds_one_to_ten_operations(live_app: LiveApp, size: int) -> None:
    response = await _post(live_app, [{"query": "{ me { id } }"}] * size)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


async def test_a_batch_item_that_is_not_an_object_is_refused(live_app: LiveApp) -> None:
    response = await _post(live_app, [{"query": "{ me { id } }"}, "{ me { id } }"])
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_bad_token_refuses_the_whole_batch(live_app: LiveApp) -> None:
    response = await _post(live_app, [{"query": "{ me { id } }"}] * 2, token="not-a-jwt")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.timeout(required_tools.NPM_CI_TIMEOUT + 120)
def test_apollo_batch_http_link_sends_one_post_and_gets_each_answer(live_app: LiveApp) -> None:
    node = required_tools.node_modules(APOLLO)
    done = subprocess.run(
        [node, "batch.mjs", f"{live_app.base_url}/graphql", live_app.customer_token, "MUG-001"],
        cwd=APOLLO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["posts"] == 1, result
    assert result["product"]["product"]["sku"] == "MUG-001"
    assert result["me"]["me"]["email"] == "demo@shopfront.example"
    assert result["placed"]["placeOrder"]["order"]["status"] == "PLACED"
