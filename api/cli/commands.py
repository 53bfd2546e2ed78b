"""The `shopfront` command: one module per command group (serve, project, migrate, seed,
projections, token, schema), put together here."""

from __future__ import annotations

import typer

from api.cli import migrate, project, projections, schema, seed, serve, token

app = typer.Typer(
    help="Shopfront: a GraphQL backend-for-frontend built as CQRS.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(project.project)
app.command()(migrate.migrate)
app.command()(seed.seed)
app.add_typer(projections.app, name="projections")
app.command()(token.token)
app.command("export-schema")(schema.export_schema)
app.add_typer(schema.app, name="schema")
