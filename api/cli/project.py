"""`shopfront project`: a process that only runs the projectors (no HTTP)."""

from __future__ import annotations

import asyncio
import signal

import typer

from api.bootstrap import Services
from api.cli.common import console
from api.settings import Settings


def project() -> None:
    """Run the projectors only (no HTTP): lead them, or stand by to take over when the
    leader dies; stops on SIGTERM or SIGINT."""
    from api.logs import configure

    settings = Settings(projectors="inline")
    configure(json_logs=not settings.is_dev, level=settings.log_level)
    problem = settings.startup_problem()
    if problem is not None:
        console.print(f"[red]Refusing to start:[/red] {problem}", soft_wrap=True)
        raise typer.Exit(2)
    asyncio.run(_project(settings))


async def _project(settings: Settings) -> None:
    services = Services.create(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await services.start_projections()
        leadership = services.runner.leadership
        holder = "?" if leadership is None else leadership.holder
        console.print(f"Projector process {holder}: leading or standing by", highlight=False)
        await stop.wait()
    finally:
        await services.close()
    console.print("Projector process stopped.")
