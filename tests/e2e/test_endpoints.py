"""The plain HTTP endpoints (health, readiness, metrics), the GraphiQL page with its
vendored assets, and the projections status screen."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import jwt
from prometheus_client.parser import text_string_to_metric_families

from .client import Api, Json, LiveAppLike

PROJECTIONS = {
    "catalog",
    "order_history",
    "order_detail",
    "customer_profile",
    "sales_dashboard",
    "fulfillment_queue",
}


async def test_healthz(api: Api) -> None:
    response = await api.request("GET", "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(api: Api) -> None:
    response = await api.request("GET", "/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ready"


def _samples(text: str) -> dict[str, list[Any]]:
    """Metric family name -> its samples; fails unless the text is valid Prometheus."""
    return {family.name: list(family.samples) for family in text_string_to_metric_families(text)}


async def test_metrics_are_prometheus_text(api: Api) -> None:
    await api.data("{ products(first: 1) { edges { cursor } } }")
    response = await api.request("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "shopfront_projection_position" in text
    assert "shopfront_http_requests" in text
    families = _samples(text)

    positions = {s.labels["name"]: s.value for s in families["shopfront_projection_position"]}
    assert set(positions) == PROJECTIONS
    assert all(value > 0 for value in positions.values()), positions  # the demo data
    assert {s.labels["name"] for s in families["shopfront_projection_lag_events"]} == PROJECTIONS

    def graphql_posts(samples: list[Any]) -> float:
        return float(
            sum(
                s.value
                for s in samples
                if s.name == "shopfront_http_requests_total"
                and s.labels == {"path": "/graphql", "method": "POST", "status": "200"}
            )
        )

    before = graphql_posts(families["shopfront_http_requests"])
    assert before >= 1
    assert "shopfront_http_request_seconds" in families
    for _ in range(3):
        await api.data("{ __typename }")
    after = graphql_posts(
        _samples((await api.request("GET", "/metrics")).text)["shopfront_http_requests"]
    )
    assert after == before + 3


STATIC_REF = re.compile(r'(?:src|href)="(/graphiql/static/[^"]+)"')


async def test_graphiql_page_and_its_assets(api: Api, live_app: LiveAppLike) -> None:
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await api.request("GET", "/graphql", headers={"Accept": browser_accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>Shopfront GraphiQL</title>" in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts, page[:2000]
    assert all(src.startswith("/graphiql/static/") for src in scripts), scripts
    # everything is local: no CDN, no other host
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)

    assets = sorted(set(STATIC_REF.findall(page)))
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    for asset in assets:
        got = await api.request("GET", asset)
        assert got.status_code == 200, asset
        assert got.content, asset
        kind = "javascript" if asset.endswith(".js") else "css"
        assert kind in got.headers["content-type"], (asset, got.headers["content-type"])
    missing = await api.request("GET", "/graphiql/static/no-such-file.js")
    assert missing.status_code == 404

    # dev mode: the headers editor starts with the demo customer's token
    match = re.search(r"Authorization[^A-Za-z]+Bearer ([A-Za-z0-9_.\-]+)", page)
    assert match, "no Authorization header in the page"
    token = match.group(1)
    claims = jwt.decode(token, live_app.env["SHOPFRONT_JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == live_app.customer_id
    assert claims["role"] == "customer"
    me = await api.data("{ me { email } }", token=token)
    assert me["me"]["email"] == "demo@shopfront.example"

    # a GET with a query is an API call, even from a browser
    response = await api.request(
        "GET", "/graphql", params={"query": "{ __typename }"}, headers={"Accept": browser_accept}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


PROJECTIONS_QUERY = "{ projections { name position headPosition lag lagMs state } }"


async def _projections(api: Api, staff: str) -> list[Json]:
    rows: list[Json] = (await api.data(PROJECTIONS_QUERY, token=staff))["projections"]
    return rows


async def test_projections_status_catches_up(api: Api, live_app: LiveAppLike) -> None:
    staff = live_app.staff_token
    rows = await _projections(api, staff)
    assert {row["name"] for row in rows} == PROJECTIONS
    assert len(rows) == len(PROJECTIONS)
    head_before = max(row["headPosition"] for row in rows)

    await api.add_product(staff)  # one more event in the log
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        rows = await _projections(api, staff)
        if all(row["lag"] == 0 and row["headPosition"] > head_before for row in rows):
            break
        assert loop.time() < deadline, json.dumps(rows, indent=2)
        await asyncio.sleep(0.1)
    for row in rows:
        assert row["position"] == row["headPosition"], row
        assert row["state"] == "running", row
        assert row["lagMs"] in (None, 0, 0.0), row
