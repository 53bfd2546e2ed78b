"""`shopfront projections ...`: inspect, rebuild and retry the read models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.bootstrap import Services
from api.cli.common import console, with_services

app = typer.Typer(help="Inspect and rebuild the read models.", no_args_is_help=True)


@app.command("status")
def projections_status() -> None:
    """Where each projection is in the event log."""

    async def work(services: Services) -> None:
        table = Table("name", "position", "head", "lag", "lag ms", "state", "parked")
        for s in await services.runner.status_from_log():
            lag_ms = "-" if s.lag_ms is None else f"{s.lag_ms:.0f}"
            state = "idle" if s.state == "stopped" else s.state
            table.add_row(
                s.name,
                str(s.position),
                str(s.head_position),
                str(s.lag),
                lag_ms,
                state,
                str(s.dead_letters),
            )
        console.print(table)
        _print_leader(services)
        letters = await services.runner.list_dead_letters()
        if letters:
            parked = Table(
                "projection",
                "position",
                "stream",
                "event",
                "error",
                "parked at",
                title="Parked events (shopfront projections retry)",
            )
            for d in letters:
                parked.add_row(
                    d.name,
                    str(d.position),
                    d.stream_id,
                    d.event_type,
                    d.error,
                    d.parked_at.isoformat(timespec="seconds"),
                )
            console.print(parked)

    with_services(work)


def _print_leader(services: Services) -> None:
    leader = services.runner.leader
    if leader is None:
        console.print("Leader: none recorded (no process applies events)")
    else:
        since = leader[1].isoformat(timespec="seconds")
        console.print(f"Leader: {leader[0]} since {since}", highlight=False)


@app.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="One projection; all if left out")] = None,
) -> None:
    """Empty the read tables and replay the event log from position 0."""

    async def work(services: Services) -> None:
        names = [name] if name else list(services.runner.projectors)
        _check_name(services, name)
        await services.runner.rebuild(names)  # one pass over the log for all of them
        await services.runner.catch_up()
        console.print(f"Rebuilt {', '.join(names)} up to position {services.runner.position}.")

    with_services(work)


@app.command("retry")
def projections_retry(
    name: Annotated[str | None, typer.Argument(help="One projection; all if left out")] = None,
) -> None:
    """Re-apply parked (dead-letter) events, e.g. after a fix; each stream in order."""

    async def work(services: Services) -> None:
        _check_name(services, name)
        results = await services.runner.retry(name)
        if not results:
            console.print("No parked events.")
        for pname, (applied, remaining) in results.items():
            console.print(f"{pname}: re-applied {applied}, still parked {remaining}")
        if any(remaining for _, remaining in results.values()):
            raise typer.Exit(1)

    with_services(work)


def _check_name(services: Services, name: str | None) -> None:
    if name is not None and name not in services.runner.projectors:
        console.print(
            f"Unknown projection {name!r}; one of: " + ", ".join(services.runner.projectors)
        )
        raise typer.Exit(2)
