"""Event time parsing and the fields every event carries (SPEC section 3)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.common import (
    SCHEMA_VERSION,
    general_event_time,
    parse_event_time,
    unbounded_event_time,
)
from schemas.events import parse_event

MS = 1_700_000_000_000
AT_MS = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def chat(**fields: Any) -> bytes:
    data: dict[str, Any] = {
        "event_id": "e1",
        "user_id": "u1",
        "type": "message",
        "ts": MS,
        "text": "hi",
    }
    data.update(fields)
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


# -- parse_event_time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05T12:34:56+08:00", datetime(2024, 3, 5, 4, 34, 56, tzinfo=UTC)),
        ("2024-03-05T12:34:56-05:30", datetime(2024, 3, 5, 18, 4, 56, tzinfo=UTC)),
        ("2024-03-05T12:34:56Z", datetime(2024, 3, 5, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-05t12:34:56z", datetime(2024, 3, 5, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-05T12:34:56.250Z", datetime(2024, 3, 5, 12, 34, 56, 250_000, tzinfo=UTC)),
        ("  2024-03-05T12:34:56Z ", datetime(2024, 3, 5, 12, 34, 56, tzinfo=UTC)),
        (MS, AT_MS),
        (str(MS), AT_MS),
        (float(MS), AT_MS),
        (86_400_000, datetime(1970, 1, 2, tzinfo=UTC)),  # the earliest the stores hold
        (MS + 5, AT_MS + timedelta(milliseconds=5)),
    ],
)
def test_accepted_forms_give_aware_utc(value: object, expected: datetime) -> None:
    parsed = parse_event_time(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_aware_datetime_is_converted_to_utc() -> None:
    local = datetime(2024, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    parsed = parse_event_time(local)
    assert parsed == datetime(2024, 1, 1, tzinfo=UTC)
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-05T12:34:56",  # no offset
        "2024-03-05",  # a date, no offset
        datetime(2024, 3, 5, 12, 34, 56),  # naive datetime
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        "yesterday",
        "",
        "-1700000000000",
        None,
        [MS],
        {"ms": MS},
    ],
)
def test_rejected_forms_raise_value_error(value: object) -> None:
    with pytest.raises(ValueError, match=r"^ts "):
        parse_event_time(value)


def test_naive_text_is_rejected_with_a_clear_reason() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_event_time("2024-03-05T12:34:56")


@pytest.mark.parametrize("value", [10**20, 1e300, "9" * 25])
def test_out_of_range_epoch_is_a_value_error(value: object) -> None:
    # Pydantic turns only ValueError (and AssertionError) into a ValidationError; anything
    # else escapes parse_event and the scorer's `except ValidationError`.
    with pytest.raises(ValueError):  # noqa: PT011 - the type is what matters here
        parse_event_time(value)


# -- ts_ms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (MS, MS),
        (547_526_407_624, 547_526_407_624),
        (2_191_955_024_259, 2_191_955_024_259),
        ("1987-05-09T02:40:07.624Z", 547_526_407_624),
    ],
)
def test_ts_ms_is_exact_to_the_millisecond(ts: object, expected: int) -> None:
    assert parse_event("chat", chat(ts=ts)).ts_ms == expected


def test_ts_ms_round_trips_every_millisecond_of_a_second() -> None:
    start = 547_526_407_000
    wrong = [
        ms for ms in range(start, start + 1000) if parse_event("chat", chat(ts=ms)).ts_ms != ms
    ]
    assert wrong == []


# -- common fields ------------------------------------------------------------------------


def test_common_fields_and_defaults() -> None:
    event = parse_event("chat", chat(props={"k": [1, 2]}))
    assert event.event_id == "e1"
    assert event.user_id == "u1"
    assert event.ts == AT_MS
    assert event.schema_version == SCHEMA_VERSION == 1
    assert event.props == {"k": [1, 2]}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"event_id": ...}, "event_id"),
        ({"user_id": ...}, "user_id"),
        ({"ts": ...}, "ts"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "   "}, "event_id"),
        ({"user_id": " \t"}, "user_id"),
        ({"user_id": "x" * 129}, "user_id"),
        ({"schema_version": 0}, "schema_version"),
        ({"props": [1]}, "props"),
        ({"ts": "2024-03-05T12:34:56"}, "ts"),
        ({"ts": True}, "ts"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_common_fields_are_rejected(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event("chat", chat(**fields))
    assert [e["loc"][0] for e in info.value.errors()] == [where]


def test_events_are_immutable() -> None:
    event = parse_event("chat", chat())
    with pytest.raises(ValidationError):
        event.user_id = "someone else"


_DIGITS = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")


@given(
    year=st.integers(min_value=0, max_value=9999).map(lambda n: f"{n:04d}"),
    month=_DIGITS,
    day=_DIGITS,
    hour=_DIGITS,
    minute=_DIGITS,
    second=_DIGITS,
    fraction=st.sampled_from(["", ".5", ".123", ".970524"]),
    offset=st.sampled_from(["Z", "+00:00", "+08:00", "-05:30", "+23:59", "-24:00"]),
)
def test_the_common_form_reads_as_the_general_path_does(
    year: str,
    month: str,
    day: str,
    hour: str,
    minute: str,
    second: str,
    fraction: str,
    offset: str,
) -> None:
    """The fast path for `YYYY-MM-DDTHH:MM:SS[.f]Z|±hh:mm` gives what the general path
    gives, or leaves the error (a month 13, a day 31 of a 30-day month) to it."""
    text = f"{year}-{month}-{day}T{hour}:{minute}:{second}{fraction}{offset}"
    try:
        expected: datetime | str = general_event_time(text)
    except ValueError as exc:
        expected = str(exc)
    try:
        got: datetime | str = unbounded_event_time(text)
    except ValueError as exc:
        got = str(exc)
    assert got == expected
    if isinstance(got, datetime):
        assert got.tzinfo == UTC
