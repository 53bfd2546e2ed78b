"""`shopfront seed`: data through the real command handlers (the data: api/cli/seeding.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from api.auth import make_token
from api.bootstrap import Services
from api.cli.common import console, with_services
from api.settings import Settings
from projections.screens import customer_profile


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
    from api.cli.seeding import DEMO_EMAIL, seed_demo
    from api.cli.seeding import seed as run_seed

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

    with_services(work)


def _print_tokens(settings: Settings, customer_id: str | None) -> None:
    ttl = dt.timedelta(days=7)
    if customer_id is not None:
        console.print("[bold]Demo customer token[/bold] (Authorization: Bearer ...):")
        print(make_token(settings.jwt_secret, customer_id, "customer", ttl))
    console.print("[bold]Staff token[/bold]:")
    print(make_token(settings.jwt_secret, "staff-demo", "staff", ttl))
