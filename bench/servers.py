"""The two servers the bench drives: Shopfront as users run it (``shopfront serve``:
uvicorn, one worker, production settings) and the plain-Starlette baseline."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from bench import procs
from bench.dataset import db_env

JWT_SECRET = "bench-secret-" + "x" * 40  # loopback only; tokens are made by the bench
METRICS_TOKEN = "bench-metrics-" + "m" * 32  # /metrics is served in prod only to this bearer


def shopfront_env(folder: Path) -> dict[str, str]:
    return {
        **db_env(folder),
        "SHOPFRONT_ENV": "prod",
        "SHOPFRONT_JWT_SECRET": JWT_SECRET,
        # The bench is one client hammering loopback: no rate limits, and room for
        # thousands of sockets and subscriptions per identity (and pending per address).
        "SHOPFRONT_RATE_LIMIT_PER_SECOND": "0",
        "SHOPFRONT_RATE_LIMIT_PER_ADDRESS_PER_SECOND": "0",
        "SHOPFRONT_REGISTRATIONS_PER_ADDRESS_PER_MINUTE": "0",
        "SHOPFRONT_MAX_PENDING_WEBSOCKETS_PER_ADDRESS": "1000000",
        "SHOPFRONT_MAX_WEBSOCKETS_PER_IDENTITY": "1000000",
        "SHOPFRONT_MAX_SUBSCRIPTIONS_PER_IDENTITY": "1000000",
        # The memory phase holds 10,000 idle sockets at once, more than the default cap.
        "SHOPFRONT_LIMIT_CONCURRENCY": "0",
        "SHOPFRONT_METRICS_TOKEN": METRICS_TOKEN,
    }


def shopfront_command(port: int) -> list[str]:
    return [str(procs.BIN / "shopfront"), "serve", "--host", "127.0.0.1", "--port", str(port)]


def baseline_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
    ]


def start_shopfront(
    folder: Path, log: Path, **extra_env: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = procs.free_port()
    env = {**shopfront_env(folder), **extra_env}
    process = procs.start(shopfront_command(port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    procs.wait_http(base + "/readyz", process)
    return process, base


def start_baseline(read_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The plain-Starlette baseline reading the read database at ``read_url``."""
    port = procs.free_port()
    env = {
        "BENCH_READ_DATABASE_URL": read_url,
        "BENCH_JWT_SECRET": JWT_SECRET,
    }
    process = procs.start(baseline_command(port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    procs.wait_http(base + "/healthz", process)
    return process, base


def _metrics_request(base: str) -> urllib.request.Request:
    return urllib.request.Request(
        base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )


def live_subscriptions(base: str) -> int:
    """The ``shopfront_subscriptions`` gauge of /metrics."""
    with urllib.request.urlopen(_metrics_request(base), timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("shopfront_subscriptions "):
                return int(float(line.split()[1]))
    return 0


def cache_lookups(base: str) -> tuple[float, float]:
    """(hits, misses) of the server's response cache so far, from /metrics."""
    with urllib.request.urlopen(_metrics_request(base), timeout=30) as response:
        text = response.read().decode()
    counts = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        if line.startswith("shopfront_response_cache_lookups_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            counts[result] = float(line.rsplit(" ", 1)[1])
    return counts["hit"], counts["miss"]


def operation_paths(base: str) -> dict[str, float]:
    """``shopfront_graphql_operations_total`` by path (compiled, fallback), from /metrics."""
    with urllib.request.urlopen(_metrics_request(base), timeout=30) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("shopfront_graphql_operations_total{"):
            path = line.split('path="', 1)[1].split('"', 1)[0]
            counts[path] = float(line.rsplit(" ", 1)[1])
    return counts
