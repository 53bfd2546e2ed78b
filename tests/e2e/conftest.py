"""Fixtures of the end-to-end tests (on top of ``live_app`` from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .client import Api, LiveAppLike, api_client


@pytest.fixture
async def api(live_app: LiveAppLike) -> AsyncIterator[Api]:
    """An HTTP GraphQL client for the live app."""
    async with api_client(live_app.base_url) as client:
        yield client
