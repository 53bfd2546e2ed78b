"""``shopfront serve --workers 2``: two API processes on one port, each an ordinary one
(projectors inline): exactly one of them leads, and the port serves queries, mutations
and subscriptions whichever worker a connection reaches."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
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


def test_a_burst_of_connections_is_spread_over_the_workers(
    template_dir: Path, tmp_path: Path
) -> None:
    """32 connections opened at once (a load balancer's pool, a load generator): each
    worker takes a share. On uvicorn's one shared socket 29-31 went to one worker (it
    accepts all that wait); on a socket per worker (SO_REUSEPORT) the kernel hashes each
    connection to one of them: one worker with fewer than 4 of 32 has odds of about 1 in
    400,000 with an even hash."""
    with sqlite_cluster(template_dir, tmp_path) as cluster:
        base, serve = _serve_workers(cluster.env(), tmp_path / "serve.log")
        cluster.processes.append(serve)
        until(lambda: _ready(base), "the workers to serve", serve)
        port = int(base.rsplit(":", 1)[1])
        until(lambda: len(_workers(serve.pid)) == 2, "two workers", serve)
        workers = _workers(serve.pid)
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            until(lambda: sum(_accepted(workers, port).values()) == 32, "32 accepted")
            shares = _accepted(workers, port)
            print(f"connections per worker: {sorted(shares.values())}")
            assert min(shares.values()) >= 4, shares
        finally:
            for connection in connections:
                connection.close()

        # A worker killed: uvicorn starts another on a socket of its own, and the dead
        # one's socket is gone (not left listening with nobody to accept), so every new
        # connection is answered.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        until(
            lambda: len(_workers(serve.pid) - {victim}) == 2 and _all_answer(base, 1),
            "a replacement worker",
            serve,
        )
        assert _all_answer(base, 40)

        # A second server on the same port is refused (SO_REUSEPORT would let it join).
        second = subprocess.run(
            [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=cluster.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in second.stdout, second.stdout
        stop_server(serve)
        assert serve.returncode == 0
        assert "Traceback" not in (tmp_path / "serve.log").read_text()


def _workers(pid: int) -> set[int]:
    """The uvicorn workers among the children (not multiprocessing's resource tracker)."""
    return {
        child
        for child in _children(pid)
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def _accepted(workers: set[int], port: int) -> dict[int, int]:
    """Established connections to ``port`` held by each worker (from /proc, as ss does)."""
    local = f":{port:04X}"
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[3] == "01":  # TCP_ESTABLISHED
            established.add(fields[9])  # inode
    shares = {}
    for pid in workers:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        shares[pid] = len(inodes & established)
    return shares


def _all_answer(base: str, count: int) -> bool:
    """``count`` new connections in a row answered (each may reach either worker)."""
    for _ in range(count):
        try:
            with httpx.Client(timeout=2) as fresh:
                if fresh.get(f"{base}/healthz").status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
    return True


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
