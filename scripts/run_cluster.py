"""`make run-cluster`: Shopfront as several processes on loopback, to try the process
picture of docs/operations.md: a throwaway PostgreSQL server and a throwaway Redis (the
change bus, shared persisted queries and rate limits; each in a temporary folder,
removed afterwards), both databases migrated and the demo shop seeded, two API processes
that do not project (SHOPFRONT_PROJECTORS=off) and two projector processes
(`shopfront project`: one leads, one stands by). Prints the URLs and tokens; Ctrl-C
stops everything.

    .venv/bin/python scripts/run_cluster.py [--ports 8000 8001]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import postgres_server, redis_server  # noqa: E402  (the tests' servers)

SHOPFRONT = [sys.executable, "-m", "api"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs=2, default=[8000, 8001])
    ports = parser.parse_args().ports
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with postgres_server() as server, redis_server() as redis:
        server.create_database("shopfront_write")
        server.create_database("shopfront_read")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
        env.update(
            SHOPFRONT_WRITE_DATABASE_URL=server.url("shopfront_write"),
            SHOPFRONT_READ_DATABASE_URL=server.url("shopfront_read"),
            # Commits wake the other processes through Redis at once; the poll is the
            # fallback while Redis is down (stop it to see: changes still arrive).
            SHOPFRONT_REDIS_URL=redis.url,
            SHOPFRONT_PROJECTION_POLL_INTERVAL=os.environ.get(
                "SHOPFRONT_PROJECTION_POLL_INTERVAL", "0.5"
            ),
        )
        for name in ("SHOPFRONT_JWT_SECRET", "SHOPFRONT_LOG_LEVEL"):
            if name in os.environ:
                env[name] = os.environ[name]
        subprocess.run([*SHOPFRONT, "migrate"], cwd=ROOT, env=env, check=True)
        seeded = subprocess.run(
            [*SHOPFRONT, "seed", "--demo"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        processes = start_processes(env, ports)
        try:
            print(f"\nPostgreSQL: {server.url('shopfront_write')} and .../shopfront_read")
            print(f"Redis: {redis.url} (pid {redis.process.pid if redis.process else '?'})")
            for port in ports:
                print(f"API (projectors off): http://127.0.0.1:{port}/graphql")
            print("Projectors: 2 `shopfront project` processes, one leads (projections status)")
            print(seeded.stdout.decode().strip())
            print("\nCtrl-C stops everything.", flush=True)
            while not stop and all(p.poll() is None for p in processes):
                time.sleep(0.2)
            exited = [p for p in processes if p.poll() is not None]
            if exited and not stop:
                print(f"a process exited ({exited[0].args}); stopping the others")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    print("Stopped.")
    return 0


def start_processes(env: dict[str, str], ports: list[int]) -> list[subprocess.Popen[bytes]]:
    api_env = {**env, "SHOPFRONT_PROJECTORS": "off"}
    processes = [
        subprocess.Popen([*SHOPFRONT, "serve", "--port", str(port)], cwd=ROOT, env=api_env)
        for port in ports
    ]
    processes += [subprocess.Popen([*SHOPFRONT, "project"], cwd=ROOT, env=env) for _ in range(2)]
    return processes


if __name__ == "__main__":
    sys.exit(main())
