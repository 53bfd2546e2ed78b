"""Apply the Alembic migrations of both databases (``shopfront migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def config(which: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / which))
    cfg.attributes["url"] = url
    return cfg


def upgrade(write_url: str, read_url: str, revision: str = "head") -> None:
    """Blocking: call from sync code or a worker thread."""
    command.upgrade(config("write", write_url), revision)
    command.upgrade(config("read", read_url), revision)
