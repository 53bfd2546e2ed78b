"""The security tests' servers are configured like ``shopfront serve``, and start-up
refuses what it must."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect

from api.app import build_app
from api.settings import Settings
from tests.e2e.client import TIMEOUT, TRANSPORT_WS

from .support import Server

pytestmark = pytest.mark.timeout(60)


async def test_websocket_compression_is_off_as_in_shopfront_serve(dev_server: Server) -> None:
    """The client offers permessage-deflate; like ``shopfront serve`` (without
    SHOPFRONT_WEBSOCKET_COMPRESSION) the server declines it."""
    async with connect(
        dev_server.ws_url, subprotocols=[TRANSPORT_WS], proxy=None, open_timeout=TIMEOUT
    ) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers, ws.response.headers


def test_rs256_without_a_jwks_is_refused_at_start_up(tmp_path: object) -> None:
    """RS256 with no key source would verify nothing: ``build_app`` (which ``shopfront
    serve`` calls, printing the reason and exiting 2) refuses it."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings option
        jwt_algorithm="RS256",
        jwt_jwks=None,
        write_database_url=f"sqlite+aiosqlite:///{tmp_path}/write.db",
        read_database_url=f"sqlite+aiosqlite:///{tmp_path}/read.db",
    )
    with pytest.raises(ValueError, match="SHOPFRONT_JWT_JWKS"):
        build_app(settings)
