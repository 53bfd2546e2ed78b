"""A subscriber process: ``python -m bench.subscribers SPEC``. Opens one WebSocket per
subscription (graphql-transport-ws), prints ``READY <open> <failed>`` once all are
subscribed, stamps every message with the wall clock as it arrives, and on ``STOP`` (a
line on stdin) closes everything and writes what it received to the spec's ``out`` file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


async def _open(
    url: str, token: str, query: str, record: list[tuple[float, str]] | None, compress: bool
) -> ClientConnection:
    ws = await connect(
        url,
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        open_timeout=60,
        close_timeout=2,
        max_queue=None,
        # Browsers offer permessage-deflate, and so does this client unless told not to.
        compression="deflate" if compress else None,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if ack.get("type") != "connection_ack":
        await ws.close()
        raise RuntimeError(f"no connection_ack: {ack}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    asyncio.get_running_loop().create_task(_read(ws, record))
    return ws


async def _read(ws: ClientConnection, record: list[tuple[float, str]] | None) -> None:
    with contextlib.suppress(Exception):
        async for message in ws:
            now = time.time()
            text = message if isinstance(message, str) else message.decode()
            if record is not None:
                record.append((now, text))
            if text.startswith('{"type":"ping"') or '"type": "ping"' in text:
                await ws.send(json.dumps({"type": "pong"}))


async def _main(spec: dict[str, Any]) -> None:
    record: list[tuple[float, str]] | None = [] if spec.get("record") else None
    gate = asyncio.Semaphore(int(spec.get("concurrency", 100)))
    sockets: list[ClientConnection] = []
    failures: list[str] = []

    async def one(token: str) -> None:
        async with gate:
            try:
                ws = await _open(
                    spec["url"], token, spec["query"], record, spec.get("compression", True)
                )
                sockets.append(ws)
            except Exception as error:
                failures.append(f"{type(error).__name__}: {error}")

    await asyncio.gather(*(one(token) for token in spec["tokens"]))
    print(f"READY {len(sockets)} {len(failures)}", flush=True)
    if failures:
        print(f"first failure: {failures[0]}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "STOP":
            break
    closed = sum(1 for ws in sockets if ws.close_code is not None)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    result = {
        "open": len(sockets),
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
