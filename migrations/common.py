"""Shared Alembic environment: async engines, run for the write or the read database."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from api.database import create_engine


def _run_sync(connection: Connection, metadata: sa.MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: sa.MetaData) -> None:
    engine = create_engine(url, "log")
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync, metadata)
            await connection.commit()
    finally:
        await engine.dispose()


def run(metadata: sa.MetaData) -> None:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("No database URL given to Alembic")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(url, metadata))
