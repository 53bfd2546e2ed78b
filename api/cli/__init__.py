"""`shopfront ...`: the command line (api/cli/commands.py); the console script's entry."""

from __future__ import annotations


def main() -> None:
    # Imported here, not above: the server imports api.cli.seeding (the demo shop's email)
    # and should not load the command line with it.
    from api.cli.commands import app

    app()
