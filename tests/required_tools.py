"""The system tools some tests drive for real, found exactly where
``scripts/install-test-deps.sh`` (``make test-deps``) puts and checks them.

A missing or too old tool fails the test with a message that says how to install it:
a test that cannot run its tool proves nothing, so it may not pass as a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

# The same path and version the install script checks.
CHROMIUM = Path("/usr/bin/chromium")
MIN_NODE_MAJOR = 18
INSTALL_HINT = "run `make test-deps` (scripts/install-test-deps.sh) to install it"


def missing(problem: str) -> NoReturn:
    pytest.fail(f"{problem}: {INSTALL_HINT}", pytrace=False)


def chromium() -> Path:
    """Headless Chromium for the browser tests."""
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing (Debian package chromium)")
    return CHROMIUM


def node_and_npm() -> tuple[str, str]:
    """Node.js >= MIN_NODE_MAJOR and npm, for the graphql-http audit."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("'node' and 'npm' must be on PATH for the graphql-http audit")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        missing(f"Node.js {version} is too old: the graphql-http audit needs >= {MIN_NODE_MAJOR}")
    return node, npm
