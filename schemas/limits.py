"""The bounds of every event field: what every store holds and what is plausible.

One place for them, so the models, the published JSON Schemas and the README say the same.
The stores: ClickHouse `Decimal(18, 4)` holds amounts below 10^14, `DateTime` (a UInt32 of
epoch seconds) holds 1970 to 2106, `UInt32` counts below 2^32; the bounds below sit well
inside them, at what a real shop can send.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

# Ids (user, event, room, session, order, group, campaign, trigger, product, coupon): ASCII
# letters, digits and `_ - . : @ + =`, starting with a letter, digit or underscore, at most
# 128 characters. Every such id is one path segment of a URL as it is (no `/`, `?`, `#`,
# `%`, spaces or dot-only names), so an id the pipeline accepts is addressable through every
# API call (`GET /v1/users/{user_id}`), and it reads the same in logs, SQL and CSV.
ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:@+=-]*$"
ID_MAX_LENGTH = 128
ID_ALPHABET = "ASCII letters, digits and _ - . : @ + = (starting with a letter, digit or _)"

Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

# An order's amount in its own currency: at most 10^12 (a trillion: beyond any real order in
# any currency, 7 digits below what Decimal(18, 4) holds), at least 0 (0 is a free order).
MAX_AMOUNT = Decimal(10) ** 12
# The same bound on the amount converted to the base currency.
MAX_BASE_AMOUNT = MAX_AMOUNT
# A gift's value, in the platform's units.
MAX_GIFT_VALUE = 10.0**9
# Seconds watched reported by one `watch` event: at most a day.
MAX_WATCH_SECONDS = 86_400.0
# Items of one order: a list of objects, or a count.
MAX_ITEMS = 10_000
# Text of a live comment and of a chat message, in characters.
MAX_COMMENT_CHARS = 2_000
MAX_MESSAGE_CHARS = 4_000
# Touch channel names and other short labels.
MAX_LABEL_CHARS = 64

# Event times before this are invalid unless configured otherwise (EARLIEST_EVENT_TIME): old
# enough for real historical backfills, late enough to catch epoch seconds sent where
# milliseconds are meant (they land in January 1970).
DEFAULT_EARLIEST_EVENT_TIME = datetime(1990, 1, 1, tzinfo=UTC)
# The stores cannot hold event times outside these (ClickHouse DateTime is 1970 to 2106).
STORE_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
STORE_LATEST = datetime(2106, 1, 1, tzinfo=UTC)
