"""Logging of every process (worker, API, demo, CLI): one line per record, as text or JSON.

Text: ``2026-12-01T10:00:00.123Z WARNING agents.models: message; cause: ValueError: why``,
the exception (and its causes) on the record's own line, the traceback after it only when the
level is DEBUG. JSON: one object per line with ``time`` (ISO 8601, UTC), ``level``,
``logger``, ``message``, any ``extra`` fields, and for an exception ``error`` (``type``,
``message``) and ``traceback`` (one string).

What may be logged at INFO and above: counts, topics, partitions, offsets, reasons and ids of
our own (erasures, refits, events). Message text, user ids and raw record values only at DEBUG.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from pipeline.settings import Settings

LogFormat = Literal["text", "json"]

# Extras that libraries add and JSON lines leave out: uvicorn's coloured copy of the message.
_DROPPED_EXTRAS = ("color_message", "taskName")
_LINE_ENDS = "\r\n"
KAFKA_CLIENT_LOGGERS = ("aiokafka", "kafka")
# Libraries whose INFO is chatter (the worker's framework starting and stopping, a hundred
# lines; Kafka clients' connections; each HTTP request `lifecycle up` makes): from WARNING
# unless the level is DEBUG.
FRAMEWORK_LOGGERS = ("mode", "faust", "httpx", "httpcore")
# Most exceptions of a chain (`raise ... from ...`) a line names.
_CHAIN_DEPTH = 4


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def iso_time(created: float) -> str:
    """``created`` (epoch seconds, as LogRecord.created) as ``2026-12-01T10:00:00.123Z``."""
    whole = int(created // 1)
    return f"{_second(whole)}.{int((created - whole) * 1000):03d}Z"


def fold(text: str) -> str:
    """``text`` on one line: line breaks written as the two characters ``\\n``."""
    if "\n" not in text and "\r" not in text:
        return text
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, then of what caused it: ``A: a <- B: b``."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < _CHAIN_DEPTH:
        text = str(current)
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        cause = current.__cause__
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause
    return fold(" <- ".join(parts))


def error_fields(exc: BaseException) -> dict[str, str]:
    """``{"type", "message"}`` of an exception, with ``cause`` (as `describe`) when chained."""
    fields = {"type": type(exc).__name__, "message": str(exc)}
    cause = exc.__cause__
    if cause is None and not exc.__suppress_context__:
        cause = exc.__context__
    if cause is not None:
        fields["cause"] = describe(cause)
    return fields


def _exception(record: logging.LogRecord) -> BaseException | None:
    info = record.exc_info
    return info[1] if info and info[1] is not None else None


class TextFormatter(logging.Formatter):
    """``time level logger: message[; cause: Type: message]``, one line per record; with
    ``tracebacks`` (the DEBUG level) an exception's traceback follows on its own lines."""

    def __init__(self, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{iso_time(record.created)} {record.levelname} {record.name}: "
            f"{fold(record.getMessage().rstrip(_LINE_ENDS))}"
        )
        exc = _exception(record)
        if exc is not None:
            line += f"; cause: {describe(exc)}"
            if self.tracebacks and record.exc_info:
                line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record: time, level, logger, message, extras, error, traceback."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
            reserved_attrs=[*RESERVED_ATTRS, *_DROPPED_EXTRAS],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = iso_time(record.created)
        super().add_fields(log_data, record, message_dict)
        if isinstance(log_data.get("message"), str):
            log_data["message"] = log_data["message"].rstrip(_LINE_ENDS)
        exc = _exception(record)
        if exc is not None:
            log_data["error"] = error_fields(exc)


def formatter(fmt: LogFormat, level: int) -> logging.Formatter:
    """The formatter of ``fmt`` for a process logging from ``level`` up."""
    if fmt == "json":
        return JsonFormatter()
    return TextFormatter(tracebacks=level <= logging.DEBUG)


def level_of(name: str | int) -> int:
    """A level number from ``DEBUG``/``info``/``20``...; raises ValueError on another name."""
    if isinstance(name, int):
        return name
    number = logging.getLevelName(name.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {name!r}: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


def configure_logging(level: str | int, fmt: LogFormat, stream: IO[str] | None = None) -> None:
    """Send every logger's records from ``level`` up to one handler on ``stream`` (standard
    error by default) in format ``fmt``; Python warnings and uncaught exceptions too, as one
    line each; the Kafka clients' from INFO up. Replaces the root logger's handlers; call once
    at a process's start. Raises ValueError on an unknown level name."""
    number = level_of(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt, number))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    quiet = number if number <= logging.DEBUG else max(number, logging.WARNING)
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    # The Kafka clients' DEBUG is every request and response, records' bytes included,
    # hundreds of lines a second: never written, whatever the level; their INFO (connections,
    # group joins) only at DEBUG.
    for name in KAFKA_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(max(quiet, logging.INFO))
    # Libraries that set up handlers of their own log through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught


def setup_logging(settings: Settings, level: str | int | None = None) -> None:
    """``configure_logging`` from the settings' LOG_LEVEL and LOG_FORMAT; ``level`` (a CLI
    option) overrides LOG_LEVEL."""
    configure_logging(level if level is not None else settings.log_level, settings.log_format)


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("lifecycle").critical("the process stops", exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("lifecycle").error(
        "%s stops", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


class Throttle:
    """At most one line per key and interval for a problem that may repeat per record.

    ``due(key)`` is the number of times ``key`` was held back since its last line when a line
    is due now (0 the first time), else None (and counts this one).
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._next: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def due(self, key: object, now: float | None = None) -> int | None:
        at = time.monotonic() if now is None else now
        if at < self._next.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._next[key] = at + self.interval_s
        return self._held.pop(key, 0)
