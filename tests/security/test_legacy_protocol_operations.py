"""A query or mutation sent over the legacy graphql-ws protocol (which runs subscriptions
only) gets a clear error with a code, not an internal error with a stack trace in the
server's log."""

from __future__ import annotations

from tests.e2e.client import legacy_ws

from .support import Server, hs256


async def test_a_query_over_the_legacy_protocol_is_refused_with_a_code(
    prod_server: Server,
) -> None:
    async with legacy_ws(prod_server.ws_url, hs256("legacy-query")) as client:
        for query in (
            "{ me { id } }",
            'mutation { payOrder(input: {orderId: "x"}) { userErrors { code } } }',
        ):
            op_id = await client.start(query)
            message = await client.receive_for(op_id)
            assert message["type"] == "error", message
            error = message["payload"]
            assert error["extensions"] == {"code": "OPERATION_NOT_ALLOWED"}, message
            assert "graphql-transport-ws" in error["message"]
    log = prod_server.log_text()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
