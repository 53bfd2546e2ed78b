"""Options of ``python -m bench`` (each also settable as BENCH_<NAME> in the environment)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

PHASES = ("history", "reads", "writes", "latency", "memory", "rebuild", "cluster", "bus")


@dataclasses.dataclass(frozen=True)
class Config:
    customers: int = 10_000
    products: int = 1_000
    orders: int = 100_000
    random_seed: int = 1
    duration: float = 10.0  # seconds of each measured round of a throughput figure
    warmup: float = 2.0
    rounds: int = 3  # rounds per side, alternating ours / baseline
    connections: int = 32  # concurrent HTTP connections of the load generator
    subscribers: int = 1_000
    latency_rate: float = 20.0  # placeOrder mutations per second while 1,000 listen
    latency_seconds: float = 30.0
    broadcast_events: int = 10  # events each delivered to all subscribers
    broadcast_rate: float = 0.5  # of those per second: one fan-out ends before the next
    idle_subscriptions: int = 10_000
    ws_compression: bool = True  # subscribers offer permessage-deflate, as browsers do
    history_seconds: float = 3.0  # per round and side
    # The cluster phase seeds its own, smaller data set into a throwaway PostgreSQL.
    cluster_customers: int = 300
    cluster_products: int = 200
    cluster_orders: int = 5_000
    loadgen: str = "auto"  # auto (wrk if installed), wrk, python
    db: str = "sqlite"  # sqlite, postgresql, both: the engine(s) of the per-engine phases
    profile: bool = False  # py-spy the server during one extra, uncounted round
    phases: tuple[str, ...] = PHASES
    phase_timeout: float = 1200.0
    seed_timeout: float = 3600.0
    out: Path | None = None


HELP = {
    "customers": "customers to seed (default %(default)s)",
    "products": "products to seed (default %(default)s)",
    "orders": "orders to seed (default %(default)s)",
    "random_seed": "seed of the data set's random choices (default %(default)s)",
    "duration": "seconds of each measured throughput round (default %(default)s)",
    "warmup": "seconds of warm-up per side before measuring (default %(default)s)",
    "rounds": "measured rounds per side, alternating ours/baseline (default %(default)s)",
    "connections": "concurrent HTTP connections of the load generator (default %(default)s)",
    "subscribers": "live subscribers for the delivery latency (default %(default)s)",
    "latency_rate": "placeOrder/s while the subscribers listen (default %(default)s)",
    "latency_seconds": "seconds of mutations for the latency figure (default %(default)s)",
    "broadcast_events": "events delivered to all subscribers (default %(default)s)",
    "broadcast_rate": "broadcast events per second (default %(default)s)",
    "idle_subscriptions": "idle subscriptions for the memory figure (default %(default)s)",
    "history_seconds": "seconds per round and side of the history screen (default %(default)s)",
    "cluster_customers": "customers the cluster phase seeds into PostgreSQL (default %(default)s)",
    "cluster_products": "products the cluster phase seeds (default %(default)s)",
    "cluster_orders": "orders the cluster phase seeds (default %(default)s)",
    "phase_timeout": "time limit of each phase, seconds (default %(default)s)",
    "seed_timeout": "time limit of seeding, seconds (default %(default)s)",
}


def _env(name: str, default: object) -> str | None:
    value = os.environ.get(f"BENCH_{name.upper()}")
    return value if value is not None else (None if default is None else str(default))


def parse(argv: list[str] | None = None) -> Config:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Seed Shopfront, drive it from other processes over loopback, and print "
        "the figures of the performance issue against their baselines (docs/performance.md).",
    )
    for field in dataclasses.fields(Config):
        name = field.name
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if name == "phases":
            parser.add_argument(
                flag,
                default=_env(name, ",".join(PHASES)),
                help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
            )
        elif name == "db":
            parser.add_argument(
                flag,
                default=_env(name, default),
                choices=["sqlite", "postgresql", "both"],
                help="database engine(s) the phases run on, each row printed per engine "
                "(cluster runs once, on its own PostgreSQL; default %(default)s)",
            )
        elif name == "loadgen":
            parser.add_argument(
                flag, default=_env(name, default), choices=["auto", "wrk", "python"]
            )
        elif name == "ws_compression":
            parser.add_argument(
                "--no-ws-compression",
                dest=name,
                action="store_false",
                default=_env(name, "1") not in ("0", "false", "no"),
                help="subscribers do not offer permessage-deflate (browsers do)",
            )
        elif name == "profile":
            parser.add_argument(
                flag,
                action="store_true",
                default=_env(name, "") in ("1", "true", "yes"),
                help="sample the server with py-spy in one extra round per throughput figure",
            )
        elif name == "out":
            parser.add_argument(flag, default=_env(name, None), help="results JSON file")
        else:
            kind = type(default)
            parser.add_argument(
                flag,
                type=kind,
                default=kind(_env(name, default) or default),
                help=HELP.get(name),
            )
    args = parser.parse_args(argv)
    values = vars(args)
    phases = tuple(p.strip() for p in str(values.pop("phases")).split(",") if p.strip())
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(unknown)}")
    out = values.pop("out")
    return Config(**values, phases=phases, out=None if out is None else Path(out))
