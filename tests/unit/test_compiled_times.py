"""The compiled path writes a stored time exactly as the Strawberry DateTime scalar would
(parse, then ``isoformat()``), whether or not it takes the shortcut for stored times."""

from __future__ import annotations

import datetime as dt

import pytest

from api.graphql.compiled.sources import HELPERS

time = HELPERS["_time"]


@pytest.mark.parametrize(
    "stored",
    [
        "2026-12-05T13:14:40.301768+00:00",  # as projections.base.iso stores it
        "2026-12-05T13:14:40+00:00",  # no microseconds
        "2026-12-05T13:14:40.000000+00:00",  # zero microseconds written out
        "2026-12-05T13:14:40.301768",  # naive
        "2026-12-05T14:14:40.301768+01:00",  # another offset
        "2026-12-05T13:14:40.301768Z",
        "2026-12-05 13:14:40.301768+00:00",  # a space for the T
    ],
)
def test_a_stored_time_is_written_as_the_datetime_scalar_writes_it(stored: str) -> None:
    assert time(stored) == dt.datetime.fromisoformat(stored).isoformat()
