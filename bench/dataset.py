"""The seeded data set: made once per size with ``shopfront seed`` (through the real
command handlers), cached under var/bench/data/, and copied for each run so that the
mutations of one run never leak into the next."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import procs

CACHE = procs.ROOT / "var" / "bench"
DB_FILES = ("write.db", "read.db")


@dataclasses.dataclass(frozen=True)
class Sizes:
    customers: int
    products: int
    orders: int
    random_seed: int = 1

    @property
    def key(self) -> str:
        return f"c{self.customers}-p{self.products}-o{self.orders}-s{self.random_seed}"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def db_env(folder: Path) -> dict[str, str]:
    """The settings that point Shopfront at the databases in ``folder``."""
    return {
        "SHOPFRONT_WRITE_DATABASE_URL": sqlite_url(folder / "write.db"),
        "SHOPFRONT_READ_DATABASE_URL": sqlite_url(folder / "read.db"),
    }


def seed_commands(sizes: Sizes) -> list[list[str]]:
    shopfront = str(procs.BIN / "shopfront")
    return [
        [shopfront, "migrate"],
        [
            shopfront,
            "seed",
            "--customers",
            str(sizes.customers),
            "--products",
            str(sizes.products),
            "--orders",
            str(sizes.orders),
            "--random-seed",
            str(sizes.random_seed),
        ],
    ]


def checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, so that copying the file copies everything."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def ensure_seeded(sizes: Sizes, timeout: float) -> tuple[Path, bool, dict[str, object]]:
    """The cached, seeded databases for ``sizes``: (folder, reused?, metadata)."""
    folder = CACHE / "data" / sizes.key
    meta_file = folder / "meta.json"
    if meta_file.exists():
        meta: dict[str, object] = json.loads(meta_file.read_text())
        # Seeded by an older version: bring the schema up to date (a no-op when it is).
        _shopfront(seed_commands(sizes)[0], folder, timeout, subprocess.PIPE)
        for name in DB_FILES:
            checkpoint(folder / name)
        return folder, True, meta
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = partial / "seed.log"
    started = time.monotonic()
    for command in seed_commands(sizes):
        left = timeout - (time.monotonic() - started)
        with log.open("ab") as sink:
            _shopfront(command, partial, max(left, 1.0), sink)
    for name in DB_FILES:
        checkpoint(partial / name)
    with contextlib.closing(sqlite3.connect(partial / "write.db")) as conn:
        (events,) = conn.execute("SELECT position FROM event_log_head").fetchone()
        (orders,) = conn.execute("SELECT count(*) FROM orders").fetchone()
    meta = {
        "sizes": dataclasses.asdict(sizes),
        "seconds": round(time.monotonic() - started, 1),
        "events": int(events),
        "orders": int(orders),
        "commands": [" ".join(c[1:]) for c in seed_commands(sizes)],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (partial / "meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder, False, meta


def _shopfront(command: list[str], folder: Path, timeout: float, sink: Any) -> None:
    """Run a ``shopfront`` command on the databases in ``folder``; fails loudly."""
    subprocess.run(
        command,
        cwd=procs.ROOT,
        env={**_base_env(), **db_env(folder)},
        stdout=sink,
        stderr=sink,
        check=True,
        timeout=timeout,
    )


def working_copy(source: Path, target: Path) -> Path:
    """Fresh copies of the seeded databases in ``target`` (old files and WALs removed)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in DB_FILES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (target / (name + suffix)).unlink(missing_ok=True)
        shutil.copyfile(source / name, target / name)
    return target


def _base_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("SHOPFRONT_REDIS_URL", None)  # the in-process bus, as a one-process deployment
    return env
