"""``python -m bench.rebuild_worker FOLDER OUT``: rebuild every projection of the
databases in FOLDER as ``shopfront projections rebuild`` does (one pass over the event log
applies every projector to a shadow database, then all are swapped in); write JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from api.bootstrap import Services
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
        started = time.perf_counter()
        await services.runner.rebuild()  # all of them, in one pass over the log
        await services.runner.catch_up()
        total = time.perf_counter() - started
        return {"events": head, "seconds": total}
    finally:
        await services.close()


def main() -> None:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(json.dumps(asyncio.run(rebuild_all(folder))))


if __name__ == "__main__":
    main()
