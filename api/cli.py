"""`shopfront ...`: serve, migrate, seed, projections, token, export-schema."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ipaddress
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from api.auth import make_token
from api.services import Services
from api.settings import Settings
from domain.commands import Role
from projections.screens import customer_profile

app = typer.Typer(
    help="Shopfront: a GraphQL backend-for-frontend built as CQRS.",
    no_args_is_help=True,
    add_completion=False,
)
projections_app = typer.Typer(help="Inspect and rebuild the read models.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
schema_app = typer.Typer(help="The GraphQL schema and its changes.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
console = Console()
T = TypeVar("T")


def _with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = Services.create(Settings())
        try:
            await services.runner.load_checkpoints()
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


def tune_garbage_collector(young_threshold: int) -> None:
    """A server's young garbage collections every ``young_threshold`` allocations (0:
    Python's default): a request allocates a few thousand objects that die with it, and a
    young collection every 700 allocations also walks those still in use."""
    if young_threshold:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def exposed_dev_secret(settings: Settings, host: str) -> str | None:
    """Why serving on ``host`` with these settings would hand out staff access: the
    dev-only secret is in the repository, so anyone who can reach the server can sign
    their own staff token. Fine on loopback (``make run``), refused elsewhere."""
    if not settings.uses_dev_secret or is_loopback(host):
        return None
    return (
        f"listening on {host} with the dev-only JWT secret, which is public: anyone who "
        "can reach this address could sign a staff token. Set SHOPFRONT_JWT_SECRET "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'), or listen "
        "on 127.0.0.1"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (each an ordinary one)")
    ] = 1,
) -> None:
    """Serve GraphQL (and GraphiQL in dev) over HTTP and WebSocket."""
    import uvicorn
    from starlette.applications import Starlette

    from api.app import build_app
    from api.logs import configure

    settings = Settings()
    host, port = host or settings.host, port or settings.port
    configure(json_logs=not settings.is_dev, level=settings.log_level)
    app: Starlette | str
    try:
        problem = exposed_dev_secret(settings, host) or settings.startup_problem()
        if problem is not None:
            raise RuntimeError(problem)
        # Several workers: each process builds its own app from the environment.
        app = build_app(settings) if workers == 1 else "api.app:create_app"
    except (RuntimeError, ValueError) as error:
        console.print(f"[red]Refusing to start:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"Shopfront on http://{host}:{port}/graphql ({settings.env})")
    tune_garbage_collector(settings.gc_young_threshold)
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=None,
        access_log=settings.is_dev,
        ws_per_message_deflate=settings.websocket_compression,
        ws_max_size=settings.websocket_max_message_bytes,
        limit_concurrency=settings.limit_concurrency or None,
        timeout_keep_alive=settings.keep_alive_timeout,
        # h11's limit on a request's head (httptools has none: see api/edge.py).
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # X-Forwarded-For rewrites the client address only from the proxies named.
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )


@app.command()
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
    import signal

    services = Services.create(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await services.runner.start()
        leadership = services.runner.leadership
        holder = "?" if leadership is None else leadership.holder
        console.print(f"Projector process {holder}: leading or standing by", highlight=False)
        await stop.wait()
    finally:
        await services.close()
    console.print("Projector process stopped.")


@app.command()
def migrate() -> None:
    """Apply the Alembic migrations of the write and the read database."""
    from migrations.runner import upgrade

    settings = Settings()
    upgrade(settings.write_database_url, settings.read_database_url)
    console.print("Both databases are at the latest migration.")


@app.command()
def seed(
    customers: Annotated[int, typer.Option(min=0)] = 100,
    products: Annotated[int, typer.Option(min=0)] = 50,
    orders: Annotated[int, typer.Option(min=0)] = 1000,
    demo: Annotated[
        bool,
        typer.Option(help="Seed the demo shop instead, if the database is empty, and print tokens"),
    ] = False,
    random_seed: Annotated[int | None, typer.Option(help="Seed for repeatable data")] = None,
) -> None:
    """Create data through the real command handlers, then bring the read models up to date."""
    from api.seed import DEMO_EMAIL, seed_demo
    from api.seed import seed as run_seed

    async def work(services: Services) -> None:
        if demo:
            if services.runner.head > 0:
                console.print("The database has data already: demo seed skipped.")
            else:
                await seed_demo(services.bus)
            await services.runner.catch_up()
            row = await customer_profile.customer_by_email(services.read_engine, DEMO_EMAIL)
            _print_tokens(services.settings, None if row is None else row.customer_id)
            return
        total = products + customers + orders
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("Seeding", total=total)
            await run_seed(
                services.bus,
                customers=customers,
                products=products,
                orders=orders,
                report=lambda n: progress.advance(task, n),
                seed_value=random_seed,
            )
            head = await services.runner.head_position()
            catch = progress.add_task("Projecting", total=head)
            while services.runner.position < head:
                await services.runner.step()
                progress.update(catch, completed=services.runner.position)
        console.print(f"Seeded {products} products, {customers} customers, {orders} orders.")

    _with_services(work)


def _print_tokens(settings: Settings, customer_id: str | None) -> None:
    ttl = dt.timedelta(days=7)
    if customer_id is not None:
        console.print("[bold]Demo customer token[/bold] (Authorization: Bearer ...):")
        print(make_token(settings.jwt_secret, customer_id, "customer", ttl))
    console.print("[bold]Staff token[/bold]:")
    print(make_token(settings.jwt_secret, "staff-demo", "staff", ttl))


@projections_app.command("status")
def projections_status() -> None:
    """Where each projection is in the event log."""

    async def work(services: Services) -> None:
        table = Table("name", "position", "head", "lag", "lag ms", "state", "parked")
        states = await services.runner.status_from_log()
        for s in states:
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

    _with_services(work)


def _print_leader(services: Services) -> None:
    leader = services.runner.leader
    if leader is None:
        console.print("Leader: none recorded (no process applies events)")
    else:
        since = leader[1].isoformat(timespec="seconds")
        console.print(f"Leader: {leader[0]} since {since}", highlight=False)


@projections_app.command("rebuild")
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

    _with_services(work)


@projections_app.command("retry")
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

    _with_services(work)


def _check_name(services: Services, name: str | None) -> None:
    if name is not None and name not in services.runner.projectors:
        console.print(
            f"Unknown projection {name!r}; one of: " + ", ".join(services.runner.projectors)
        )
        raise typer.Exit(2)


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="Customer id or staff id")],
    role: Annotated[str, typer.Option(help="customer or staff")] = "customer",
    ttl_hours: Annotated[float, typer.Option(min=0.01)] = 24.0,
) -> None:
    """Print a signed JWT for the given subject and role."""
    if role not in ("customer", "staff"):
        console.print("--role must be customer or staff")
        raise typer.Exit(2)
    role_value: Role = "staff" if role == "staff" else "customer"
    print(make_token(Settings().jwt_secret, sub, role_value, dt.timedelta(hours=ttl_hours)))


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from api.schema import export_sdl

    sys.stdout.write(export_sdl())


@schema_app.command("diff")
def schema_diff(
    base: Annotated[
        str | None,
        typer.Argument(help="A schema file or a git revision (default: merge-base with main)"),
    ] = None,
) -> None:
    """List breaking and dangerous changes of the code's schema against BASE; exit 1 on a
    breaking change that schema-changes.md does not acknowledge."""
    from pathlib import Path

    from api.schema import export_sdl
    from api.schema_diff import CHANGES_FILE, BaseNotFound, diff_with_base

    try:
        found = diff_with_base(export_sdl(), base, Path.cwd())
    except BaseNotFound as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    console.print(f"Schema changes against {found.base}:", highlight=False)
    for change in found.breaking:
        mark = "acknowledged" if change in found.acknowledged else "BREAKING"
        console.print(f"  [red]{mark}[/red] {change.line}", highlight=False)
    for change in found.dangerous:
        console.print(f"  [yellow]dangerous[/yellow] {change.line}", highlight=False)
    if not found.breaking and not found.dangerous:
        console.print("  none that could break a client")
    if found.unacknowledged:
        console.print(
            f"[red]{len(found.unacknowledged)} breaking change(s).[/red] Deprecate first "
            f"(@deprecated), remove later; to remove now, add the lines above to {CHANGES_FILE} "
            "with the reason clients can take it."
        )
        raise typer.Exit(1)


def main() -> None:
    app()
