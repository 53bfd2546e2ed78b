"""A frame made once for a broadcast (api/ws/frames.py) is byte for byte what the
``websockets`` protocol that uvicorn runs writes for the same text on a server
connection without extensions: short, 16-bit and 64-bit lengths, non-ASCII text."""

from __future__ import annotations

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, Side, State

from api.ws.frames import server_protocol, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_a_shared_frame_is_what_the_server_protocol_writes(size: int) -> None:
    text = ("é€" * size)[:size]
    connection = Protocol(Side.SERVER, state=State.OPEN)
    connection.send_text(text.encode())
    assert text_frame(text) == b"".join(connection.data_to_send())


def test_only_uvicorn_s_own_send_is_recognised() -> None:
    async def wrapped(message: object) -> None:
        return None

    assert server_protocol(wrapped) is None
    assert server_protocol(None) is None
    assert server_protocol(WebSocketsSansIOProtocol.send) is None  # not bound
