"""The log formats: one line per record, the cause on it, JSON with its fields, levels."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from api.access_log import log_request
from pipeline.logs import (
    KAFKA_CLIENT_LOGGERS,
    JsonFormatter,
    TextFormatter,
    Throttle,
    configure_logging,
    level_of,
    setup_logging,
)
from pipeline.settings import Settings

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)


def record(
    message: str = "hello",
    *args: object,
    level: int = logging.WARNING,
    exc: BaseException | None = None,
    **extra: Any,
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    made = logging.LogRecord("agents.test", level, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


def raised() -> ValueError:
    """A ValueError with a multi-line message, raised from an OSError (with tracebacks)."""
    try:
        try:
            raise OSError("connection refused")
        except OSError as cause:
            raise ValueError("bad value\nsecond line") from cause
    except ValueError as exc:
        return exc


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The process's logging on a buffer; the root logger and hooks restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook, threading.excepthook)
    clients = {name: logging.getLogger(name).level for name in KAFKA_CLIENT_LOGGERS}
    stream = io.StringIO()
    yield stream
    for name, level in clients.items():
        logging.getLogger(name).setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    sys.excepthook = saved[2]
    threading.excepthook = saved[3]
    logging.captureWarnings(False)


def test_a_text_line_is_time_level_logger_and_message() -> None:
    line = TextFormatter().format(record("sent %d events to %s", 3, "t"))
    assert TEXT_LINE.match(line), line
    assert line.endswith(" WARNING agents.test: sent 3 events to t")


def test_line_breaks_in_a_message_are_folded() -> None:
    line = TextFormatter().format(record("first\nsecond\r\nthird\n"))
    assert "\n" not in line
    assert "\r" not in line
    assert line.endswith("agents.test: first\\nsecond\\nthird")


def test_an_exception_is_on_the_same_line_with_its_cause() -> None:
    line = TextFormatter().format(record("flush failed", level=logging.ERROR, exc=raised()))
    assert "\n" not in line
    assert line.endswith(
        "flush failed; cause: ValueError: bad value\\nsecond line <- OSError: connection refused"
    )
    assert "Traceback" not in line


def test_the_traceback_follows_only_at_debug() -> None:
    text = TextFormatter(tracebacks=True).format(record("failed", exc=raised()))
    first, *rest = text.splitlines()
    assert first.endswith(
        "failed; cause: ValueError: bad value\\nsecond line <- OSError: connection refused"
    )
    assert rest
    assert rest[0].startswith("Traceback (most recent call last)")


def test_a_json_line_has_time_level_logger_message_and_extras() -> None:
    line = JsonFormatter().format(
        record("bad\nrecord at %s", "t[1]@5", topic="t", color_message="x")
    )
    assert "\n" not in line
    fields = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])
    assert fields["level"] == "WARNING"
    assert fields["logger"] == "agents.test"
    assert fields["message"] == "bad\nrecord at t[1]@5"
    assert fields["topic"] == "t"
    assert "color_message" not in fields
    assert list(fields)[:4] == ["time", "level", "logger", "message"]


def test_a_json_exception_has_error_and_traceback() -> None:
    fields = json.loads(JsonFormatter().format(record("failed", exc=raised())))
    assert fields["error"] == {
        "type": "ValueError",
        "message": "bad value\nsecond line",
        "cause": "OSError: connection refused",
    }
    assert fields["traceback"].startswith("Traceback (most recent call last)")
    assert "OSError: connection refused" in fields["traceback"]


def test_a_json_line_keeps_text_other_than_ascii() -> None:
    fields = json.loads(JsonFormatter().format(record("房间 %s", "r1")))
    assert fields["message"] == "房间 r1"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_records_below_the_level_are_not_written(logs: io.StringIO, fmt: Any) -> None:
    configure_logging("warning", fmt, logs)
    log = logging.getLogger("agents.level")
    log.debug("debug line")
    log.info("info line")
    log.warning("warning line")
    log.error("error line")
    text = logs.getvalue()
    assert "debug line" not in text
    assert "info line" not in text
    assert len(text.splitlines()) == 2
    if fmt == "json":
        assert [json.loads(line)["level"] for line in text.splitlines()] == ["WARNING", "ERROR"]


def test_one_handler_replaces_those_before(logs: io.StringIO) -> None:
    logging.getLogger().addHandler(logging.StreamHandler(io.StringIO()))
    configure_logging("info", "text", logs)
    configure_logging("info", "text", logs)
    assert len(logging.getLogger().handlers) == 1


def test_warnings_and_uncaught_exceptions_are_one_line_each(logs: io.StringIO) -> None:
    configure_logging("info", "json", logs)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful\nnow", UserWarning, stacklevel=1)
    exc = raised()
    sys.excepthook(type(exc), exc, exc.__traceback__)

    def fail() -> None:
        raise raised()

    thread = threading.Thread(target=fail, name="sink-0")
    thread.start()
    thread.join()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["WARNING", "CRITICAL", "ERROR"]
    assert lines[0]["logger"] == "py.warnings"
    assert lines[1]["error"]["type"] == "ValueError"
    assert lines[2]["message"] == "sink-0 stops"


def test_settings_choose_the_level_and_format(logs: io.StringIO, monkeypatch: Any) -> None:
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    monkeypatch.setattr(sys, "stderr", logs)
    setup_logging(settings, "error")  # a CLI option wins over LOG_LEVEL
    logging.getLogger("agents.x").warning("hidden")
    logging.getLogger("agents.x").error("shown")
    assert [json.loads(line)["message"] for line in logs.getvalue().splitlines()] == ["shown"]


def test_defaults_are_text_at_info() -> None:
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("text", "INFO")


def test_an_unknown_level_is_refused() -> None:
    assert level_of("warning") == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        level_of("loud")
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="loud")  # type: ignore[arg-type]


def test_the_access_log_names_the_route_not_the_path(logs: io.StringIO) -> None:
    configure_logging("info", "json", logs)
    log_request("GET", "/v1/users/{user_id}", 200, 0.0018)  # an answer: DEBUG
    log_request("GET", "/v1/users/{user_id}", 404, 0.0018)  # a caller's problem: INFO
    log_request("GET", "/readyz", 503, 0.001)  # a probe: DEBUG (the change is logged once)
    log_request("GET", "/v1/kpis", 503, 0.001)  # ours: WARNING
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "GET /v1/users/{user_id} 404 1.8 ms"),
        ("WARNING", "GET /v1/kpis 503 1.0 ms"),
    ]
    assert lines[0]["route"] == "/v1/users/{user_id}"
    assert lines[0]["status"] == 404
    assert lines[0]["logger"] == "api.access"


def test_a_throttle_lets_one_line_a_key_through_per_interval() -> None:
    throttle = Throttle(60.0)
    assert throttle.due("a", now=0.0) == 0
    assert throttle.due("a", now=1.0) is None
    assert throttle.due("b", now=1.0) == 0  # keys apart
    assert throttle.due("a", now=30.0) is None
    assert throttle.due("a", now=60.0) == 2  # two held back since the last line
    assert throttle.due("a", now=61.0) is None


def test_the_kafka_clients_write_nothing_below_info(logs: io.StringIO) -> None:
    configure_logging("debug", "text", logs)
    logging.getLogger("aiokafka.conn").debug("Response from broker: b'raw record bytes'")
    logging.getLogger("agents.test").debug("ours at DEBUG")
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group")
    text = logs.getvalue()
    assert "raw record bytes" not in text
    assert "ours at DEBUG" in text
    assert "Joined group" in text
