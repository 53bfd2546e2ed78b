"""Automatic persisted queries against the running server, as Apollo Client's
persisted-queries link uses them: the hash alone first, the query with its hash when the
server does not know it, the hash alone (POST or GET) from then on."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .client import JSON, Api, error_codes, unique

QUERY = "{ products(first: 2) { edges { node { sku name priceCents } } } }"


def _persisted(query: str, version: object = 1) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def _post(api: Api, body: dict[str, Any], accept: str = JSON) -> Any:
    return await api.request("POST", "/graphql", json=body, headers={"Accept": accept})


async def test_a_query_is_registered_once_then_run_by_its_hash(api: Api) -> None:
    query = f"# {unique('apq')}\n{QUERY}"
    extensions = _persisted(query)
    expected = await api.data(QUERY)

    first = await _post(api, {"extensions": extensions})
    assert first.status_code == 200
    body = first.json()
    assert error_codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo looks for
    assert "data" not in body

    registered = await _post(api, {"query": query, "extensions": extensions})
    assert registered.status_code == 200
    assert registered.json()["data"] == expected

    by_hash = await _post(api, {"extensions": extensions})
    assert by_hash.status_code == 200 and by_hash.json()["data"] == expected
    by_get = await api.request(
        "GET",
        "/graphql",
        params={"extensions": json.dumps(extensions)},
        headers={"Accept": JSON},
    )
    assert by_get.status_code == 200 and by_get.json()["data"] == expected


async def test_a_persisted_mutation_still_needs_post(api: Api) -> None:
    email = f"{unique('apq')}@example.com"
    mutation = (
        f'mutation {{ registerCustomer(input: {{email: "{email}", name: "A"}}) '
        "{ userErrors { code } } }"
    )
    extensions = _persisted(mutation)
    assert (await _post(api, {"query": mutation, "extensions": extensions})).status_code == 200
    by_get = await api.request(
        "GET", "/graphql", params={"extensions": json.dumps(extensions)}, headers={"Accept": JSON}
    )
    assert by_get.status_code == 405
    assert error_codes(by_get.json()) == ["METHOD_NOT_ALLOWED"]


async def test_bad_persisted_query_extensions_are_refused(api: Api) -> None:
    wrong = {"query": QUERY, "extensions": _persisted(QUERY + " ")}
    response = await _post(api, wrong)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]

    response = await _post(api, {"extensions": _persisted(QUERY, version=2)})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_VERSION_UNSUPPORTED"]

    for persisted in ({"version": 1, "sha256Hash": "abc"}, "not an object", {"version": 1}):
        response = await _post(api, {"extensions": {"persistedQuery": persisted}})
        assert response.status_code == 400, persisted
        assert error_codes(response.json()) == ["BAD_REQUEST"], persisted

    # graphql-response+json: an unknown hash is a request error, 400.
    unknown = _persisted(f"# {unique('apq')}\n{QUERY}")
    response = await _post(api, {"extensions": unknown}, accept="application/graphql-response+json")
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_persisted_query_runs_over_get_with_variables(api: Api) -> None:
    """Apollo's link with ``useGETForHashedQueries``: registered by POST, then
    ``GET /graphql?extensions=...&variables=...``; each GET runs with its own variables."""
    query = (
        f"# {unique('apq-vars')}\n"
        "query($sku: String!) { product(sku: $sku) { sku name priceCents } }"
    )
    extensions = _persisted(query)
    skus = [edge["node"]["sku"] for edge in (await api.data(QUERY))["products"]["edges"]]
    assert len(skus) == 2 and skus[0] != skus[1], skus
    expected = {
        sku: (
            await api.data(
                "query($sku: String!) { product(sku: $sku) { sku name priceCents } }",
                {"sku": sku},
            )
        )["product"]
        for sku in skus
    }
    registered = await _post(
        api, {"query": query, "variables": {"sku": skus[0]}, "extensions": extensions}
    )
    assert registered.status_code == 200
    assert registered.json()["data"] == {"product": expected[skus[0]]}

    for sku in (skus[1], skus[0]):
        by_get = await api.request(
            "GET",
            "/graphql",
            params={"extensions": json.dumps(extensions), "variables": json.dumps({"sku": sku})},
            headers={"Accept": JSON},
        )
        assert by_get.status_code == 200, by_get.text
        body = by_get.json()
        assert "errors" not in body, body
        assert body["data"] == {"product": expected[sku]}, (sku, body)

    # Without the variable the query needs: a variable coercion error, not a stale answer.
    missing = await api.request(
        "GET", "/graphql", params={"extensions": json.dumps(extensions)}, headers={"Accept": JSON}
    )
    assert error_codes(missing.json()) == ["BAD_USER_INPUT"], missing.text
