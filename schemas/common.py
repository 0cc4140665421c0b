"""Fields every event carries, and the one way event time is read."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.limits import STORE_EARLIEST, STORE_LATEST, Id

SCHEMA_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?P<fraction>\.[0-9]{1,9})?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
# The form producers send almost always (what `model_dump_json` writes): read without the
# general path's steps. Anything else, and a match that is no date, takes the general path.
_COMMON_FORM = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_MS = timedelta(milliseconds=1)


def _from_epoch_ms(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"ts {value!r} is out of range for epoch milliseconds") from exc


def parse_event_time(value: Any) -> datetime:
    """Event time from RFC 3339 with an offset, or epoch milliseconds, as an aware UTC datetime.

    Raises ValueError for anything else, and for a time the stores cannot hold (before
    1970-01-02 or from 2106 on); the configured earliest time is checked by the Validator.
    """
    parsed = unbounded_event_time(value)
    if not STORE_EARLIEST <= parsed < STORE_LATEST:
        raise ValueError(
            f"ts {parsed.isoformat()} is outside what the stores hold "
            f"({STORE_EARLIEST.date()} to {STORE_LATEST.date()})"
        )
    return parsed


def unbounded_event_time(value: Any) -> datetime:
    """`parse_event_time` without the stores' range; raises ValueError."""
    if value.__class__ is str and _COMMON_FORM.fullmatch(value):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass  # (a day or an hour out of range: the general path says which)
    return general_event_time(value)


def general_event_time(value: Any) -> datetime:
    """`unbounded_event_time` by its general path, for every form it takes."""
    if isinstance(value, bool):
        raise ValueError("ts must be RFC 3339 text or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("ts is not a finite number")
        return _from_epoch_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _from_epoch_ms(int(text))
        form = _RFC3339.fullmatch(text)
        if form is None:  # fromisoformat alone takes ISO 8601 week dates and basic formats too
            raise ValueError(f"ts {value!r} is not RFC 3339 (e.g. 2026-11-30T20:15:00+08:00)")
        if form.group("offset") is None:
            raise ValueError(f"ts {value!r} has no UTC offset")
        fraction = form.group("fraction")
        if fraction is not None and len(fraction) > 7:  # nanoseconds: microseconds are kept
            text = text.replace(fraction, fraction[:7], 1)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"ts {value!r} is not RFC 3339") from exc
        return parsed.astimezone(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("ts has no UTC offset")
        return value.astimezone(UTC)
    raise ValueError(f"ts must be RFC 3339 text or epoch milliseconds, got {type(value).__name__}")


class EventBase(BaseModel):
    """Common fields (SPEC section 3); `props` is kept but not interpreted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    user_id: Id
    ts: datetime
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
    props: dict[str, Any] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _event_time(cls, value: Any) -> datetime:
        return parse_event_time(value)

    @property
    def ts_ms(self) -> int:
        return (self.ts - _EPOCH) // _MS
