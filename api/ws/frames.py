"""One WebSocket frame made once and written to many connections, for a broadcast.

uvicorn's WebSocket protocol (``websockets-sansio``, what ``uvicorn`` picks with the
``websockets`` package installed) frames every ASGI ``websocket.send`` on its own: the
text encoded, a ``Frame`` built and serialized, the output joined, then one write to the
transport. A server's text frame without extensions (no permessage-deflate) is the same
bytes for every connection, so for a broadcast the express lane (``api.ws.fanout``) makes
it once (:func:`text_frame`) and writes it to each connection's transport
(:func:`write_frame`), when that connection is in the one state where uvicorn's own send
would do nothing else: handshake done, open, no close sent, no extension, not paused by
flow control, nothing of its own waiting to be written. In any other state (or with
another server) it returns False and the caller sends through ASGI instead.

This reads uvicorn's and websockets' protocol objects (their attributes, not a public
API), at the versions of ``requirements.lock``. ``tests/unit/test_ws_frames.py`` checks
that the bytes are what the ``websockets`` protocol writes for the same text, and
``tests/e2e/test_subscription_fanout.py`` that a running server uses the shared frames on
plain connections (``/metrics``) and its own send where permessage-deflate was
negotiated, with every message arriving whole: an upgrade that renames what is read here
fails those tests (an ``AttributeError`` in the express lane is logged and the change
queued for the ASGI send instead).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

# The ASGI server's own send, kept in a WebSocket's scope by api/middleware/edge.py.
RAW_SEND_KEY = "shopfront.server_send"


class Counts:
    """Frames this process wrote with :func:`write_frame` (``/metrics``)."""

    written = 0


counts = Counts()


def text_frame(text: str) -> bytes:
    """The bytes of ``text`` as one unmasked, uncompressed server text frame."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def server_protocol(send: Any) -> WebSocketsSansIOProtocol | None:
    """The uvicorn protocol object whose own ``send`` this is, or None (another server, or
    a send wrapped by some middleware)."""
    protocol = getattr(send, "__self__", None)
    if type(protocol) is WebSocketsSansIOProtocol and (
        getattr(send, "__func__", None) is WebSocketsSansIOProtocol.send
    ):
        return protocol
    return None


def write_frame(protocol: WebSocketsSansIOProtocol, frame: bytes) -> bool:
    """Write ``frame`` (from :func:`text_frame`) to the connection if uvicorn's send of
    its text would only have framed and written it; False (nothing written) otherwise."""
    conn = protocol.conn
    if (
        protocol.handshake_complete
        and not protocol.close_sent
        and not protocol.disconnected
        and protocol.initial_response is None
        and protocol.writable.is_set()
        and conn.state is State.OPEN
        and not conn.expect_continuation_frame
        and not conn.extensions
        and not conn.writes
        and not protocol.transport.is_closing()
    ):
        protocol.transport.write(frame)
        counts.written += 1
        return True
    return False
