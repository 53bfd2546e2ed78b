"""`shopfront export-schema` and `shopfront schema diff`: the GraphQL schema and its
changes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api.cli.common import console

app = typer.Typer(help="The GraphQL schema and its changes.", no_args_is_help=True)


def export_schema() -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from api.graphql.schema import export_sdl

    sys.stdout.write(export_sdl())


@app.command("diff")
def schema_diff(
    base: Annotated[
        str | None,
        typer.Argument(help="A schema file or a git revision (default: merge-base with main)"),
    ] = None,
) -> None:
    """List breaking and dangerous changes of the code's schema against BASE; exit 1 on a
    breaking change that schema-changes.md does not acknowledge."""
    from pathlib import Path

    from api.cli.schema_diff import CHANGES_FILE, BaseNotFound, diff_with_base
    from api.graphql.schema import export_sdl

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
