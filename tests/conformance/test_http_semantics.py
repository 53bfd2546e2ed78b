"""GraphQL-over-HTTP details the graphql-http audit does not check (its fetch always
sends an Accept header, and it tries one Accept value per media type): q-values,
wildcards and charsets in Accept, the charset of every response, request charsets,
GET parameters, HEAD. See api/http/view.py for the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
import pytest

from api.http.request import negotiate

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
TYPENAME = '{"query": "{ __typename }"}'


class LiveAppLike(Protocol):
    base_url: str


@pytest.fixture
async def http(live_app: LiveAppLike) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10, trust_env=False) as client:
        yield client


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),  # no Accept header: the audit's (and legacy clients') default
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # both named: the better one
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON};q=0.9", JSON),
        (f"{JSON}, */*", JSON),  # named beats a wildcard at the same quality
        (f"{GRAPHQL_RESPONSE}, */*;q=0.8", GRAPHQL_RESPONSE),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),  # the most specific range decides
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        ("APPLICATION/JSON; Q=1", JSON),
        (f"{JSON}; charset=utf-8", JSON),
        (f"{JSON}; charset=iso-8859-1", None),  # we only write UTF-8
        (f"{JSON};q=0", None),
        (f"{JSON};q=nan", None),
        ("text/csv", None),
        ("nonsense", None),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def _post(http: httpx.AsyncClient, content: str, **headers: str) -> httpx.Response:
    return await http.post("/graphql", content=content, headers={"Content-Type": JSON, **headers})


def _content_type(response: httpx.Response) -> tuple[str, str]:
    media, _, params = response.headers["content-type"].partition(";")
    return media.strip(), params.strip().lower()


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [("*/*", JSON), (JSON, JSON), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE)],
)
async def test_responses_say_utf8_and_vary_on_accept(
    http: httpx.AsyncClient, accept: str, media_type: str
) -> None:
    for body in (TYPENAME, '{"query": "{"}', "{not json"):  # ok, request error, bad request
        response = await _post(http, body, Accept=accept)
        assert _content_type(response) == (media_type, "charset=utf-8"), response.headers
        assert "accept" in response.headers["vary"].lower()


async def test_not_acceptable_is_406(http: httpx.AsyncClient) -> None:
    response = await _post(http, TYPENAME, Accept=f"{JSON}; charset=iso-8859-1")
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_request_charset_other_than_utf8_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        content=TYPENAME,
        headers={"Content-Type": f"{JSON}; charset=iso-8859-1"},
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    ok = await http.post(
        "/graphql", content=TYPENAME, headers={"Content-Type": f"{JSON}; charset=UTF-8"}
    )
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_get_mutation_is_405_with_allow(http: httpx.AsyncClient, accept: str) -> None:
    response = await http.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers={"Accept": accept}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _content_type(response)[0] == accept


async def test_get_parameters(http: httpx.AsyncClient) -> None:
    query = "query Type($name: String!) { __type(name: $name) { name } }"
    params: dict[str, Any] = {
        "query": query,
        "variables": '{"name": "Query"}',
        "operationName": "Type",
        "extensions": '{"some": "value"}',
    }
    response = await http.get("/graphql", params=params, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__type": {"name": "Query"}}
    # Empty optional parameters (as HTML forms send them) count as absent.
    response = await http.get(
        "/graphql",
        params={"query": "{ __typename }", "variables": "", "operationName": "", "extensions": ""},
    )
    assert response.status_code == 200, response.text
    # A parameter given twice is ambiguous.
    response = await http.get(
        "/graphql", params=[("query", "{ __typename }"), ("query", "{ me { id } }")]
    )
    assert response.status_code == 400
    # HEAD is GET without the body.
    response = await http.head("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
async def test_post_maps_must_be_objects_not_encoded_strings(
    http: httpx.AsyncClient, parameter: str
) -> None:
    body = f'{{"query": "{{ __typename }}", "{parameter}": "{{}}"}}'
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = await _post(http, body, Accept=accept)
        assert response.status_code == 400, response.text
        assert "data" not in response.json()


@pytest.mark.parametrize(
    ("accept", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)], ids=["json", "gql-response"]
)
async def test_request_errors_by_media_type(
    http: httpx.AsyncClient, accept: str, status: int
) -> None:
    """Parse, validation and variable coercion errors: 200 in application/json, 400 in
    application/graphql-response+json; no data entry either way."""
    for body in (
        '{"query": "{"}',
        '{"query": "{ noSuchField }"}',
        '{"query": "query($id: ID!) { __typename }", "variables": {"id": null}}',
    ):
        response = await _post(http, body, Accept=accept)
        assert response.status_code == status, (body, response.text)
        assert "data" not in response.json()
        assert response.json()["errors"]
