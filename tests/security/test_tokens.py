"""Only a valid token of the configured kind is an identity: expired, not yet valid,
unsigned, wrongly signed, algorithm-swapped, or issued for someone else's issuer or
audience -- all 401 UNAUTHENTICATED over HTTP, and a rejected connection over WebSocket.

HS256 (the shared secret) and RS256 with the identity provider's keys from a JWKS file
or a JWKS URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import TEST_SECRET
from tests.e2e.client import TIMEOUT, TRANSPORT_WS, bearer, transport_ws

from .support import (
    AUDIENCE,
    ISSUER,
    KID,
    STRANGER_KEY,
    JwksEndpoint,
    Server,
    claims,
    forged_hs256,
    hs256,
    public_pem,
    request_error,
    rs256,
    unsigned,
)

pytestmark = pytest.mark.timeout(150)

# Needs an identity: anonymous gets a field error, a valid token gets data.
MY_ORDERS = "{ myOrders(first: 1) { edges { cursor } } }"


def now_plus(minutes: float) -> dt.datetime:
    """A claim time relative to when the token is made (not to when this module was
    imported: a long run must not turn a not-yet-valid token valid)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


async def _post(server: Server, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT, trust_env=False) as c:
        return await c.post("/graphql", json={"query": MY_ORDERS}, headers=bearer(token))


async def assert_accepted(server: Server, token: str) -> None:
    response = await _post(server, token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert body["data"] == {"myOrders": {"edges": []}}, body


async def assert_refused(server: Server, token: str, why: str = "") -> str:
    """401 UNAUTHENTICATED with a Bearer challenge; returns the message."""
    response = await _post(server, token)
    body = request_error(response, 401, "UNAUTHENTICATED")
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
    message: str = body["errors"][0]["message"]
    assert why.lower() in message.lower(), (why, message)
    return message


async def assert_ws_rejected(server: Server, token: str) -> None:
    async with connect(
        server.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
        with pytest.raises(ConnectionClosed) as closed:
            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
            pytest.fail(f"expected the connection to be closed, got {message!r}")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401, closed.value.rcvd


# -- HS256 ---------------------------------------------------------------------------------


async def test_hs256_expired_not_yet_valid_unsigned_and_forged_tokens_are_401(
    dev_server: Server,
) -> None:
    await assert_accepted(dev_server, hs256("token-tester"))
    await assert_accepted(dev_server, hs256("token-tester", nbf=now_plus(-1)))

    await assert_refused(dev_server, hs256("token-tester", exp=now_plus(-5)), "expired")
    await assert_refused(dev_server, hs256("token-tester", nbf=now_plus(10)), "not valid yet")
    await assert_refused(dev_server, unsigned(claims("token-tester", "staff")))
    await assert_refused(
        dev_server, hs256("token-tester", "staff", secret="not-the-secret-" + "y" * 40)
    )
    # the right secret, but the signature of another payload (claims swapped in)
    good = hs256("token-tester")
    header, _, signature = good.split(".")
    _, payload, _ = hs256("intruder", "staff", secret="other-secret-" + "z" * 40).split(".")
    await assert_refused(dev_server, f"{header}.{payload}.{signature}")


async def test_an_expired_token_is_rejected_over_websocket(dev_server: Server) -> None:
    async with transport_ws(dev_server.ws_url, hs256("ws-token-tester")):
        pass  # a valid one is acknowledged
    await assert_ws_rejected(dev_server, hs256("ws-token-tester", exp=now_plus(-5)))
    await assert_ws_rejected(dev_server, unsigned(claims("ws-token-tester", "staff")))


# -- RS256, keys from a JWKS file; issuer and audience required ------------------------------


async def test_rs256_token_from_the_identity_provider_is_accepted(
    rs256_file_server: Server,
) -> None:
    await assert_accepted(rs256_file_server, rs256("idp-user"))
    await assert_accepted(rs256_file_server, rs256("idp-staff", "staff"))
    async with transport_ws(rs256_file_server.ws_url, rs256("idp-user")):
        pass


async def test_rs256_refuses_algorithm_swaps_and_unknown_keys(rs256_file_server: Server) -> None:
    payload = claims("intruder", "staff", iss=ISSUER, aud=AUDIENCE)
    for token in (
        # HS256 "signed" with the public key, which anyone can fetch
        forged_hs256(payload, public_pem()),
        forged_hs256(payload, public_pem(), kid=None),
        # the HS256 secret a dev set-up would use
        hs256("intruder", "staff", secret=TEST_SECRET, iss=ISSUER, aud=AUDIENCE),
        unsigned(payload),
        # a key the identity provider never published, under its key id or another
        rs256("intruder", "staff", key=STRANGER_KEY),
        rs256("intruder", "staff", key=STRANGER_KEY, kid="other-key"),
        rs256("intruder", "staff", kid="other-key"),
    ):
        await assert_refused(rs256_file_server, token)
    await assert_ws_rejected(rs256_file_server, forged_hs256(payload, public_pem()))


@pytest.mark.parametrize(
    ("why", "extra"),
    [
        ("issuer", {"iss": "https://evil.example/"}),
        ("iss", {"iss": None}),
        ("audience", {"aud": "some-other-api"}),
        ("aud", {"aud": None}),
        ("expired", {"exp": -5}),
        ("not valid yet", {"nbf": 10}),
        ("", {"exp": None}),
    ],
)
async def test_rs256_checks_issuer_audience_and_times(
    rs256_file_server: Server, why: str, extra: dict[str, Any]
) -> None:
    # exp and nbf are given in minutes from now, made into times only here
    extra = {
        k: now_plus(v) if k in ("exp", "nbf") and isinstance(v, int) else v
        for k, v in extra.items()
    }
    await assert_refused(rs256_file_server, rs256("idp-user", **extra), why)


# -- RS256, keys from a JWKS URL -----------------------------------------------------------


async def test_rs256_with_keys_from_a_jwks_url(
    rs256_url_server: Server, jwks_endpoint: JwksEndpoint
) -> None:
    await assert_accepted(rs256_url_server, rs256("url-user", kid=KID))
    assert jwks_endpoint.fetches >= 1  # the keys came from the URL
    await assert_accepted(rs256_url_server, rs256("url-staff", "staff"))
    payload = claims("intruder", "staff")
    for token in (
        forged_hs256(payload, public_pem()),
        rs256("intruder", "staff", key=STRANGER_KEY),
        rs256("intruder", "staff", kid="not-published"),
        unsigned(payload),
        rs256("url-user", exp=now_plus(-5)),
    ):
        await assert_refused(rs256_url_server, token)
