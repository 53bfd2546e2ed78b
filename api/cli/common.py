"""What the commands share: the console they print to and a run with the services up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console

from api.bootstrap import Services
from api.settings import Settings

console = Console()
T = TypeVar("T")


def with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = Services.create(Settings())
        try:
            await services.runner.load_checkpoints()
            return await work(services)
        finally:
            if services.change_bus is not None:  # a rebuild or retry: tell the servers now
                await services.change_bus.flush()
            if services.db_wake is not None:  # the same through PostgreSQL's NOTIFY
                await services.db_wake.flush()
            await services.close()

    return asyncio.run(main())
