"""`shopfront token`: a signed JWT for a subject and role."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from api.auth import make_token
from api.cli.common import console
from api.settings import Settings
from domain.commands import Role


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
