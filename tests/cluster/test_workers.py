"""``shopfront serve --workers 2``: two API processes on one port, each an ordinary one
(projectors inline): exactly one of them leads, and the port serves queries, mutations
and subscriptions whichever worker a connection reaches."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.cluster.conftest import pid_of, sqlite_cluster, until
from tests.conftest import ROOT, free_port, stop_server
from tests.e2e.client import ORDER_EVENT_FIELDS, api_client, transport_ws
from tests.reliability.support import staff_token

SUBSCRIPTION = f"subscription {{ myOrders {{ {ORDER_EVENT_FIELDS} }} }}"
LEADER = re.compile(r'^shopfront_projector_leader\{process="([^"]+)"\} (\S+)$', re.M)


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


async def test_two_workers_on_one_port_one_leads(template_dir: Path, tmp_path: Path) -> None:
    with sqlite_cluster(template_dir, tmp_path) as cluster:
        base, serve = _serve_workers(cluster.env(), tmp_path / "serve.log")
        cluster.processes.append(serve)
        until(lambda: _ready(base), "the workers to serve", serve)
        until(lambda: pid_of(cluster.leader()) in _children(serve.pid), "a worker to lead")
        leader = cluster.leader()

        # Whichever worker answers /metrics says whether it is the leader, and only the
        # recorded one says yes.
        seen = _leader_gauges(base)
        assert seen, "no leader gauge in /metrics"
        for process, value in seen.items():
            assert float(value) == (1.0 if process == leader else 0.0), seen
        print(f"workers seen through /metrics: {len(seen)}")

        async with api_client(base) as api:
            product = await api.add_product(staff_token(), stock=5)
            token, _ = await api.register_customer("Worker Customer")
            async with transport_ws(base.replace("http", "ws") + "/graphql", token) as ws:
                op = await ws.subscribe(SUBSCRIPTION)
                order = await api.place_order(token, [(product["sku"], 1)])
                change = (await ws.next_data(op, timeout=10))["myOrders"]
                assert change["event"] == "OrderPlaced" and change["order"]["id"] == order["id"]
        stop_server(serve)
        assert serve.returncode == 0
        assert "Traceback" not in (tmp_path / "serve.log").read_text()


def _serve_workers(env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return f"http://127.0.0.1:{port}", serve


def _leader_gauges(base: str) -> dict[str, str]:
    """process -> its leader gauge, from /metrics over new connections (both workers,
    unless the kernel hands every connection to the same one for 10 s)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        with httpx.Client() as fresh:
            seen.update(LEADER.findall(fresh.get(f"{base}/metrics").text))
    return seen


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
