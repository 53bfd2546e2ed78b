"""A subscriber process: ``python -m bench.subscribers SPEC``. Opens one WebSocket per
subscription (graphql-transport-ws), prints ``READY <open> <failed>`` once all are
subscribed, stamps every message with the wall clock as its bytes arrive, and on ``STOP``
(a line on stdin) closes everything and writes what it received to the spec's ``out``
file.

The 1,000 subscribers share the server's two CPUs, so what a subscriber costs per message
is taken from the server. Each connection is therefore the `websockets` library's
sans-I/O protocol driven straight from an asyncio protocol: no task, queue or wake-up per
connection and message (the library's asyncio client took about 45 us of CPU per message
here, more than the server's whole fan-out per subscriber). Handshake, framing,
permessage-deflate and WebSocket pings are still the library's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

PROTOCOL = Subprotocol("graphql-transport-ws")
OPEN_TIMEOUT = 60.0


class Subscriber(asyncio.Protocol):
    """One WebSocket with one ``subscribe`` operation, its messages stamped on arrival."""

    def __init__(
        self,
        url: str,
        token: str,
        query: str,
        record: list[tuple[float, str]] | None,
        compress: bool,
    ) -> None:
        self.conn = ClientProtocol(
            parse_uri(url),
            subprotocols=[PROTOCOL],
            # Browsers offer permessage-deflate, and so does this client unless told not to.
            extensions=[ClientPerMessageDeflateFactory()] if compress else None,
            max_size=None,
        )
        self.token = token
        self.query = query
        self.record = record
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.conn.send_request(self.conn.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.conn.receive_data(data)
        for event in self.conn.events_received():
            if isinstance(event, Response):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event, now)
        self._flush()

    def eof_received(self) -> bool | None:
        self.conn.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _handshake(self, response: Response) -> None:
        if response.status_code != 101 or self.conn.subprotocol != PROTOCOL:
            self._fail(f"handshake refused: {response.status_code}")
            return
        self._send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.token}"}}
        )

    def _frame(self, frame: Frame, now: float) -> None:
        if frame.opcode is Opcode.TEXT or (frame.opcode is Opcode.CONT and self._fragments):
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            text = b"".join(self._fragments).decode()
            self._fragments.clear()
            self._message(text, now)

    def _message(self, text: str, now: float) -> None:
        if self.record is not None:
            self.record.append((now, text))
        if text.startswith('{"type":"ping"') or '"type": "ping"' in text:
            self._send({"type": "pong"})
        elif not self.subscribed.done():
            message = json.loads(text)
            if message.get("type") != "connection_ack":
                self._fail(f"no connection_ack: {message}")
                return
            self._send({"id": "1", "type": "subscribe", "payload": {"query": self.query}})
            self.subscribed.set_result(None)

    def _send(self, message: dict[str, Any]) -> None:
        self.conn.send_text(json.dumps(message).encode())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.conn.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
        if self.conn.close_expected():
            self.transport.close()

    def _fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(RuntimeError(reason))
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.conn.send_close(1000)
        self._flush()


async def _main(spec: dict[str, Any]) -> None:
    record: list[tuple[float, str]] | None = [] if spec.get("record") else None
    gate = asyncio.Semaphore(int(spec.get("concurrency", 100)))
    uri = parse_uri(spec["url"])
    loop = asyncio.get_running_loop()
    subscribers: list[Subscriber] = []
    failures: list[str] = []

    async def one(token: str) -> None:
        async with gate:
            subscriber = Subscriber(
                spec["url"], token, spec["query"], record, spec.get("compression", True)
            )
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: subscriber, uri.host, uri.port), OPEN_TIMEOUT
                )
                await asyncio.wait_for(asyncio.shield(subscriber.subscribed), OPEN_TIMEOUT)
                subscribers.append(subscriber)
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}")
                if subscriber.transport is not None:
                    subscriber.transport.close()

    await asyncio.gather(*(one(token) for token in spec["tokens"]))
    print(f"READY {len(subscribers)} {len(failures)}", flush=True)
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr, flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "STOP":
            break
    closed = sum(1 for s in subscribers if s.closed.done())
    for subscriber in subscribers:
        subscriber.close()
    if subscribers:
        await asyncio.wait([s.closed for s in subscribers], timeout=5)
    result = {
        "open": len(subscribers),
        "failed": failures,
        "closed_early": closed,
        "messages": record or [],
    }
    await asyncio.to_thread(Path(spec["out"]).write_text, json.dumps(result))


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(spec))
    else:
        uvloop.run(_main(spec))


if __name__ == "__main__":
    main()
