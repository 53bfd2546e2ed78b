"""``python -m bench.rebuild_worker FOLDER OUT``: rebuild every projection of the
databases in FOLDER as ``shopfront projections rebuild`` does (each projector replays the
whole event log into a shadow database, then is swapped in), timing each; write JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from api.services import Services
from api.settings import Settings
from bench.dataset import sqlite_url


async def rebuild_all(folder: Path) -> dict[str, object]:
    settings = Settings(
        write_database_url=sqlite_url(folder / "write.db"),
        read_database_url=sqlite_url(folder / "read.db"),
    )
    services = Services.create(settings)
    try:
        await services.runner.load_checkpoints()
        head = await services.runner.head_position()
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        for name in services.runner.projectors:
            one = time.perf_counter()
            await services.runner.rebuild(name)
            seconds[name] = time.perf_counter() - one
        await services.runner.catch_up()
        total = time.perf_counter() - started
        return {"events": head, "seconds": total, "per_projector": seconds}
    finally:
        await services.close()


def main() -> None:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(json.dumps(asyncio.run(rebuild_all(folder))))


if __name__ == "__main__":
    main()
