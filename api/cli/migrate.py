"""`shopfront migrate`: both databases to the latest migration."""

from __future__ import annotations

from api.cli.common import console
from api.settings import Settings


def migrate() -> None:
    """Apply the Alembic migrations of the write and the read database."""
    from migrations.runner import upgrade

    settings = Settings()
    upgrade(settings.write_database_url, settings.read_database_url)
    console.print("Both databases are at the latest migration.")
