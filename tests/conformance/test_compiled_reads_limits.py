"""The compiled read path is counted on /metrics, can be switched off, and never runs a
document that a limit refuses: the validation limits (aliases, depth: checked once per
document, cached with its validation), the cost (per request, with the variables) and the
rate limits (the middleware) refuse compiled documents as they refuse any other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.compiled_support import Shop, seeded_shop

ORDER = "id status placedAt totalCents lines { sku productName quantity } timeline { status at }"
COSTLY = (
    "query Costly($first: Int!) { "
    + " ".join(
        f"a{n}: myOrders(first: $first) {{ edges {{ node {{ {ORDER} }} }} }}" for n in range(8)
    )
    + " }"
)
PRODUCT = "query P($sku: String!) { product(sku: $sku) { id name priceCents } }"
RESTOCK = 'mutation { restockProduct(input: {sku: "X", quantity: 1}) { userErrors { code } } }'
# 31 aliases of valid fields (the limit is 30); and 13 levels (the limit is 12; no path
# of this schema is that deep, so the fields are unknown, but depth is refused first).
ALIASES = "{ products { edges { node { " + " ".join(f"s{n}: sku" for n in range(31)) + " } } } }"
DEEP = "{ " + "a { " * 12 + "b" + " }" * 13


@pytest.fixture(scope="module")
def shop(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    yield from seeded_shop(template_dir, tmp_path_factory.mktemp("compiled-limits"))


def _delta(shop: Shop, before: dict[str, float]) -> dict[str, float]:
    after = shop.counts()
    return {path: after.get(path, 0) - before.get(path, 0) for path in ("compiled", "fallback")}


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def test_metrics_count_compiled_and_fallback_operations(shop: Shop) -> None:
    staff = shop.tokens["staff"]
    body = {"query": PRODUCT, "variables": {"sku": shop.skus[0]}}
    before = shop.counts()
    # First seen: Strawberry parses, validates and runs it; from then on, its plan.
    for _ in range(3):
        assert shop.post(body, None, compiled=True).json()["data"]["product"]
    assert _delta(shop, before) == {"compiled": 2, "fallback": 1}
    before = shop.counts()
    # The projection runner's state is not a read table: always Strawberry's.
    for _ in range(2):
        shop.post({"query": "{ projections { name } }"}, staff, compiled=True)
    shop.post({"query": RESTOCK}, staff, compiled=True)  # not a read: not counted
    assert _delta(shop, before) == {"compiled": 0, "fallback": 2}


def test_cost_limit_refuses_a_compiled_document_with_costly_variables(shop: Shop) -> None:
    token = shop.tokens["customer"]
    cheap = {"query": COSTLY, "variables": {"first": 1}}
    shop.post(cheap, token, compiled=True)  # validated, and planned
    before = shop.counts()
    assert "errors" not in shop.post(cheap, token, compiled=True).json()
    refused = shop.post({"query": COSTLY, "variables": {"first": 100}}, token, compiled=True)
    assert _codes(refused.json()) == ["QUERY_TOO_COSTLY"]
    assert "data" not in refused.json()
    assert _delta(shop, before) == {"compiled": 1, "fallback": 1}


@pytest.mark.parametrize(
    ("query", "code"), [(ALIASES, "TOO_MANY_ALIASES"), (DEEP, "QUERY_TOO_DEEP")]
)
def test_validation_limits_refuse_a_document_every_time(shop: Shop, query: str, code: str) -> None:
    before = shop.counts()
    for _ in range(3):
        assert code in _codes(shop.post({"query": query}, None, compiled=True).json())
    assert _delta(shop, before) == {"compiled": 0, "fallback": 3}


def test_odd_variables_never_break_the_compiled_path(shop: Shop) -> None:
    """Variables the operation does not declare are ignored, however they are nested (here
    deeper than orjson writes): the same answer as Strawberry's, never a 500."""
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    body = {"query": PRODUCT, "variables": {"sku": shop.skus[0], "unused": deep}}
    response, _ = shop.both(body, None)
    assert response.status_code == 200
    assert response.json()["data"]["product"]


@pytest.fixture(scope="module")
def prod_shop(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Prod, with a small rate limit per address."""
    yield from seeded_shop(
        template_dir,
        tmp_path_factory.mktemp("compiled-prod"),
        SHOPFRONT_ENV="prod",
        SHOPFRONT_METRICS_TOKEN="metrics-token",
        SHOPFRONT_RATE_LIMIT_PER_ADDRESS_PER_SECOND="0.01",
        SHOPFRONT_RATE_LIMIT_PER_ADDRESS_BURST="12",
    )


def test_rate_limit_refuses_compiled_documents_and_prod_ignores_the_switch(
    prod_shop: Shop,
) -> None:
    body = {"query": PRODUCT, "variables": {"sku": prod_shop.skus[0]}}
    before = prod_shop.counts()
    statuses = []
    for _ in range(20):  # the burst (12) is spent before this loop ends
        # In prod the dev switch is ignored: the plan answers all but the first.
        response = prod_shop.post(body, None, compiled=False)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert _codes(response.json()) == ["RATE_LIMITED"]
            break
    assert statuses[-1] == 429, statuses
    served = statuses.count(200)
    assert _delta(prod_shop, before) == {"compiled": served - 1, "fallback": 1}


def test_the_setting_turns_the_compiled_path_off(
    template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("compiled-off")
    for shop in seeded_shop(template_dir, work, SHOPFRONT_COMPILED_READS="false"):
        body = {"query": PRODUCT, "variables": {"sku": shop.skus[0]}}
        before = shop.counts()
        for _ in range(3):
            assert shop.post(body, None, compiled=True).json()["data"]["product"]
        assert _delta(shop, before) == {"compiled": 0, "fallback": 3}
