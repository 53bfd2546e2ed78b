"""Fixtures of the end-to-end tests (on top of ``live_app`` from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests import required_tools

from .client import Api, LiveAppLike, api_client


@pytest.fixture
async def api(live_app: LiveAppLike) -> AsyncIterator[Api]:
    """An HTTP GraphQL client for the live app."""
    async with api_client(live_app.base_url) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A ``browser`` test may not pass as a skip: without its browser it proves nothing,
    so whatever skipped it (a missing Chromium or playwright) fails it instead."""
    report = yield
    if report.skipped and item.get_closest_marker("browser") is not None:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{reason}\nA browser test may not skip: {required_tools.INSTALL_HINT}"
    return report
