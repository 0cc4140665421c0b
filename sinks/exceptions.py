"""Errors of the sinks: an outage (try again later) or a refusal of the data (never retried)."""

from __future__ import annotations

import re
import struct

# ClickHouse error codes about the data of an insert: a value the column cannot hold, text that
# does not parse as the column's type. The same rows are refused again whenever they are sent.
# Every other code (memory, too many parts, timeouts, unknown table or database, access) and
# every network error is an outage: the rows are kept and sent again.
REFUSAL_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH (clickhouse-driver raises it client-side too)
        69,  # ARGUMENT_OUT_OF_BOUND (chDB: "Decimal value is too big")
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        128,  # TOO_LARGE_ARRAY_SIZE
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        248,  # INVALID_PARTITION_VALUE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        407,  # DECIMAL_OVERFLOW
        441,  # CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
        467,  # CANNOT_PARSE_BOOL
        632,  # UNEXPECTED_DATA_AFTER_PARSED_VALUE
        675,  # CANNOT_PARSE_IPV4
        676,  # CANNOT_PARSE_IPV6
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)

# Python errors raised while a client encodes the rows' values (before the store sees them):
# a value of the wrong type or out of the column's range. They refuse the data too.
ENCODING_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    ValueError,  # UnicodeEncodeError among them
    AttributeError,
    KeyError,
    OverflowError,
    struct.error,
)

_COLUMN = re.compile(
    r"while reading the value of key (\w+)"  # chDB (JSONEachRow)
    r"|Column (\w+): "  # clickhouse-driver
    r"|for column \"(\w+)\""  # clickhouse-driver with types_check
)


def column_named(message: str) -> str | None:
    """The column a store's error message names, if it names one."""
    match = _COLUMN.search(message)
    if match is None:
        return None
    return next(group for group in match.groups() if group)


class SinkError(RuntimeError):
    """A write or query to the store failed; the rows are kept for the next flush."""


class SinkRefused(SinkError):
    """The store (or its client, encoding the values) refused the rows' data: sending the same
    rows again fails the same way. `detail` is the store's message, `code` its ClickHouse
    error code (None for a client-side error), `column` the column it names (or None), and
    `summary` a short form without the data (the code and its name, or the Python error's
    type), fit for logs."""

    def __init__(
        self,
        message: str,
        detail: str,
        summary: str,
        code: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = detail
        self.summary = summary
        self.code = code
        self.column = column if column is not None else column_named(detail)
