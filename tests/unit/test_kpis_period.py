"""The period of `GET /v1/kpis` and `GET /v1/flows`: a clear 422 for what the store cannot
hold (found by schemathesis: years 13 and 359 reached ClickHouse and answered 503)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import HTTPException

from api.routes.kpis import _period


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [(datetime(13, 6, 23, tzinfo=UTC), datetime(359, 1, 1, tzinfo=UTC), "between"),
     (datetime(2026, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC), "between"),
     (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "before"),
     (datetime(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC), "offset")],
)  # fmt: skip
def test_a_period_the_store_cannot_hold_is_a_422(start: datetime, end: datetime, why: str) -> None:
    with pytest.raises(HTTPException) as info:
        _period(start, end)
    assert info.value.status_code == 422
    assert why in str(info.value.detail)


def test_a_period_is_in_utc_and_defaults_to_the_last_30_days() -> None:
    east = timezone(timedelta(hours=8))
    start, end = _period(datetime(2026, 11, 1, 8, tzinfo=east), None)
    assert start == datetime(2026, 11, 1, tzinfo=UTC)
    assert end - start > timedelta(days=1)
    start, end = _period(None, datetime(2026, 12, 1, tzinfo=UTC))
    assert end - start == timedelta(days=30)
