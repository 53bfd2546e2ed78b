"""Test-only fault injection: die like SIGKILL after a projector applied its rows, before
its transaction commits (``SHOPFRONT_TEST_CRASH_BEFORE_COMMIT``). Never set in production."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("shopfront.projections")


class KillHook:
    """``spec`` is "NAME" or "NAME:N": kill the process the N-th time (default the first)
    ``reached(NAME)`` is called; an empty or None spec never kills."""

    def __init__(self, spec: str | None) -> None:
        self._name, _, after = (spec or "").partition(":")
        self._countdown = int(after or 1)

    def reached(self, name: str) -> None:
        if name == self._name:
            self._countdown -= 1
            if self._countdown <= 0:
                log.warning("fault injection: killing the process before %s commits", name)
                os.kill(os.getpid(), signal.SIGKILL)
