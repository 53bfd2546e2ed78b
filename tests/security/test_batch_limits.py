"""A batch is not a way around the limits: each of its operations takes a token from the
caller's rate-limit buckets (a batch refused for its size costs one, like any request),
and each is held to the query limits on its own."""

from __future__ import annotations

import httpx

from tests.e2e.client import JSON, TIMEOUT, bearer, unique

from .support import Server, hs256

ME = {"query": "{ me { id } }"}


async def test_each_operation_of_a_batch_counts_against_the_rate_limit(
    slow_refill_server: Server,
) -> None:
    token = hs256(unique("batcher"))  # a fresh identity: a full bucket of 3
    async with httpx.AsyncClient(
        base_url=slow_refill_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as http:
        refused = await http.post("/graphql", json=[ME] * 4, headers=bearer(token))
        assert refused.status_code == 429, refused.text
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        # The refused batch cost one request: two operations still fit, then nothing does.
        allowed = await http.post("/graphql", json=[ME] * 2, headers=bearer(token))
        assert allowed.status_code == 200, allowed.text
        assert len(allowed.json()) == 2
        again = await http.post("/graphql", json=ME, headers=bearer(token))
        assert again.status_code == 429


async def test_each_operation_of_a_batch_is_held_to_the_query_limits(dev_server: Server) -> None:
    fine = "{ me { id } }"
    aliased = "{ " + " ".join(f"a{n}: me {{ id }}" for n in range(31)) + " }"
    async with httpx.AsyncClient(
        base_url=dev_server.base_url, timeout=TIMEOUT, trust_env=False
    ) as http:
        response = await http.post(
            "/graphql",
            json=[{"query": fine}, {"query": aliased}, {"query": fine}],
            headers={"Accept": JSON},
        )
    assert response.status_code == 200, response.text
    first, second, third = response.json()
    assert "errors" not in first
    assert [e["extensions"]["code"] for e in second["errors"]] == ["TOO_MANY_ALIASES"]
    assert "data" not in second
    assert "errors" not in third
