"""`shopfront serve` tunes the garbage collector's young generation (a setting)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.cli.serve import tune_garbage_collector
from api.settings import Settings


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_young_threshold_is_the_setting_and_the_older_ones_stay(
    thresholds: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFRONT_GC_YOUNG_THRESHOLD", "12345")
    tune_garbage_collector(Settings().gc_young_threshold)
    assert gc.get_threshold() == (12345, *thresholds[1:])


def test_zero_leaves_python_s_thresholds(thresholds: tuple[int, int, int]) -> None:
    tune_garbage_collector(0)
    assert gc.get_threshold() == thresholds
    assert Settings().gc_young_threshold == 50_000
