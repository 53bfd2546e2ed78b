"""connection_init payloads in the shapes clients send, and token errors in words for
people: the same words in an HTTP 401 body and in a WebSocket close reason (4401), on
both protocols; never the JWT library's own ("Not enough segments", "Invalid header
padding")."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.conftest import TEST_SECRET
from tests.e2e.client import LEGACY_WS, TIMEOUT, TRANSPORT_WS, Json, TransportWsClient, bearer

from .support import Server, claims, hs256, unsigned

pytestmark = pytest.mark.timeout(120)

MY_ORDERS = "{ myOrders(first: 1) { edges { cursor } } }"  # needs an identity
LIBRARY_WORDS = (
    "segments",
    "padding",
    "Signature verification",
    "alg value",
    "Invalid token",
    "decoding",
)


def _later(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(**delta)


def bad_tokens() -> dict[str, tuple[str, str]]:
    """name -> (token, the reason a person is told)."""
    return {
        "not a JWT": ("not-a-jwt", "The token is malformed"),
        "two segments": ("abc.def", "The token is malformed"),
        "bad padding": ("eyJhbGciOiJIUzI1NiJ9x.e30.x", "The token is malformed"),
        "expired": (hs256("words", exp=_later(minutes=-5)), "The token has expired"),
        "not yet valid": (hs256("words", nbf=_later(minutes=10)), "The token is not valid yet"),
        "wrong secret": (
            hs256("words", secret="not-the-secret-" + "y" * 40),
            "The token's signature is invalid",
        ),
        "no role": (
            jwt.encode({**claims("words"), "role": None}, TEST_SECRET, algorithm="HS256"),
            "The token has no role (role claim)",
        ),
        "unknown role": (
            hs256("words", role="admin"),  # type: ignore[arg-type]  # on purpose
            "The token has an unknown role (role claim)",
        ),
        "unsigned": (
            unsigned(claims("words", "staff")),
            "The token is signed with an algorithm this server does not accept",
        ),
    }


async def http_reason(server: Server, token: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT, trust_env=False) as c:
        response = await c.post("/graphql", json={"query": MY_ORDERS}, headers=bearer(token))
    assert response.status_code == 401, response.text
    message: str = response.json()["errors"][0]["message"]
    return message


async def refused(
    server: Server, payload: Any, protocol: Subprotocol = TRANSPORT_WS
) -> tuple[int, str, list[Json]]:
    """Send connection_init with ``payload``: (close code, reason, messages before it)."""
    messages: list[Json] = []
    async with connect(
        server.ws_url, subprotocols=[protocol], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason, messages


@pytest.mark.parametrize("name", list(bad_tokens()))
async def test_token_errors_are_worded_for_people(dev_server: Server, name: str) -> None:
    token, reason = bad_tokens()[name]
    message = await http_reason(dev_server, token)
    assert message == reason, (name, message)
    for words in LIBRARY_WORDS:
        assert words not in message, (name, message)
    # The same words over WebSocket, on both protocols.
    code, why, messages = await refused(dev_server, bearer(token))
    assert (code, why, messages) == (4401, reason, []), name
    code, why, messages = await refused(dev_server, bearer(token), LEGACY_WS)
    assert (code, why) == (4401, reason), name
    assert messages == [
        {
            "type": "connection_error",
            "payload": {"message": reason, "extensions": {"code": "UNAUTHENTICATED"}},
        }
    ], name


def shapes(token: str) -> dict[str, Json]:
    return {
        "Authorization": {"Authorization": f"Bearer {token}"},
        "authorization": {"authorization": f"Bearer {token}"},
        "headers.Authorization": {"headers": {"Authorization": f"Bearer {token}"}},
        "headers.authorization": {"headers": {"authorization": f"Bearer {token}"}},
        "token": {"token": token},
        "token with Bearer": {"token": f"Bearer {token}"},
        "authToken": {"authToken": token},
        "authToken with Bearer": {"authToken": f"Bearer {token}"},
        "beside other keys": {"Authorization": f"Bearer {token}", "clientName": "web"},
    }


@pytest.mark.parametrize("shape", list(shapes("x")))
async def test_connection_init_payload_shapes_clients_send(dev_server: Server, shape: str) -> None:
    payload = shapes(hs256(f"shape-{len(shape)}"))[shape]
    async with connect(
        dev_server.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        client = TransportWsClient(ws)
        await client.send({"type": "connection_init", "payload": payload})
        assert (await client.receive())["type"] == "connection_ack"
        # signed in: myOrders answers (anonymous would get UNAUTHENTICATED)
        op_id = await client.subscribe(MY_ORDERS)
        assert await client.next_data(op_id) == {"myOrders": {"edges": []}}, shape


async def test_a_token_in_a_shape_of_the_right_place_but_bad_is_refused(
    dev_server: Server,
) -> None:
    expired = hs256("shape-expired", exp=_later(minutes=-5))
    for payload in shapes(expired).values():
        code, reason, _ = await refused(dev_server, payload)
        assert (code, reason) == (4401, "The token has expired"), payload


@pytest.mark.parametrize(
    "payload",
    [{"jwt": "x"}, {"headers": {"X-Token": "x"}}, {"clientName": "web"}, {"accessToken": "x"}],
)
async def test_an_unknown_payload_shape_is_refused_not_anonymous(
    dev_server: Server, payload: Json
) -> None:
    expected = 'connection_init payload: put the token in Authorization ("Bearer <token>")'
    assert await refused(dev_server, payload) == (4400, expected, [])
    code, reason, messages = await refused(dev_server, payload, LEGACY_WS)
    assert (code, reason) == (4400, expected)
    assert messages[0]["type"] == "connection_error", messages


@pytest.mark.parametrize("payload", [{"Authorization": 42}, {"token": ["x"]}])
async def test_a_token_that_is_not_a_string_is_refused(dev_server: Server, payload: Json) -> None:
    code, reason, _ = await refused(dev_server, payload)
    assert code == 4400 and "must be a string" in reason, (code, reason)


async def test_an_empty_payload_is_anonymous(dev_server: Server) -> None:
    for payload in ({}, {"Authorization": ""}, None):
        async with connect(
            dev_server.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
        ) as ws:
            client = TransportWsClient(ws)
            message: Json = {"type": "connection_init"}
            if payload is not None:
                message["payload"] = payload
            await client.send(message)
            assert (await client.receive())["type"] == "connection_ack", payload
