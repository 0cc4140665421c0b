"""The real worker and API with LOG_FORMAT=json: every line an object, no personal data at INFO."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from tests.integration.conftest import Running, chdb_pipeline, worker_metric
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration

# What must never reach a line at INFO or above: a message's text, a user id, contact ids.
SECRET_TEXT = "紫藤花下的秘密 violet-wisteria-secret"
PHONE = "+86-139-0000-4242"
OPEN_ID = "oQx-open-id-4242"
INFO_AND_ABOVE = {"INFO", "WARNING", "ERROR", "CRITICAL"}


@pytest.fixture(scope="module")
def stopped(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Running:
    """A pipeline that scored the events of `send_events` and was stopped (its logs whole);
    at DEBUG, so that the details logged there are in the files and the test sees them kept
    out of the lines above it."""
    tmp = tmp_path_factory.mktemp("logs")
    prefix = f"lg{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(
        broker, tmp, prefix, LOG_FORMAT="json", LOG_LEVEL="debug", MODEL_REFIT_SECONDS="3600"
    ) as running:
        send_events(running, user_of(running))
    return running


def user_of(running: Running) -> str:
    """The user of the test's events: an id of its own (the prefix of its topics)."""
    return running.settings.app_id.removesuffix("-app") + "-violet-user"


def send_events(running: Running, user: str) -> None:
    """A chat message and a live comment carrying the secrets, and one invalid chat message
    (dead-lettered); waits until both are scored and the invalid one is a dead letter."""
    now_ms = int(time.time() * 1000)
    common = {"user_id": user, "ts": now_ms - 60_000}
    chat = {**common, "event_id": f"{user}-c1", "type": "message", "text": SECRET_TEXT,
            "props": {"phone": PHONE, "open_id": OPEN_ID}}  # fmt: skip
    comment = {**common, "event_id": f"{user}-l1", "type": "comment", "text": SECRET_TEXT,
               "room_id": "room-1", "session_id": "s-1"}  # fmt: skip
    invalid = {**chat, "event_id": f"{user}-bad", "ts": "last tuesday"}
    settings = running.settings
    with EventProducer(settings.kafka_bootstrap, topics=topics_of(settings)) as producer:
        producer.send_raw(settings.topic_chat, json.dumps(chat).encode(), key=user.encode())
        producer.send_raw(settings.topic_live, json.dumps(comment).encode(), key=user.encode())
        producer.send_raw(settings.topic_chat, json.dumps(invalid).encode(), key=user.encode())
        producer.flush()

    def scored() -> bool:
        response = running.get(f"/v1/users/{user}")
        return (
            response.status_code == 200
            and worker_metric(running, "lifecycle_dead_letters_total") >= 1
            and worker_metric(running, "lifecycle_events_scored_total") >= 2
        )

    wait_until(scored, 30, "both events scored and the invalid one dead-lettered", step=0.1)
    # The user id in a query string and in a path no route matches: neither in the access log.
    running.get(f"/v1/users?cursor={user}")
    running.get(f"/nowhere/{user}")


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each parsed as a JSON object (fails on one that is not)."""
    parsed = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            fields = json.loads(line)
        except ValueError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:300]!r}")
        assert isinstance(fields, dict), f"{path.name} line {number}: {line[:300]}"
        assert {"time", "level", "logger", "message"} <= fields.keys(), line[:300]
        parsed.append(fields)
    return parsed


@pytest.mark.parametrize("part", ["worker", "api"])
def test_every_line_is_a_json_object(stopped: Running, part: str) -> None:
    assert stopped.exit_codes == (0, 0)
    assert lines_of(stopped.tmp / f"{part}.log")


@pytest.mark.parametrize("part", ["worker", "api"])
def test_no_personal_data_at_info_or_above(stopped: Running, part: str) -> None:
    secrets = (user_of(stopped), SECRET_TEXT, PHONE, OPEN_ID)
    for fields in lines_of(stopped.tmp / f"{part}.log"):
        if fields["level"] in INFO_AND_ABOVE:
            text = json.dumps(fields, ensure_ascii=False)
            assert not [s for s in secrets if s in text], text


def test_the_dead_letter_is_one_line_with_its_position_and_reason(stopped: Running) -> None:
    chat = stopped.settings.topic_chat
    found = [
        fields
        for fields in lines_of(stopped.tmp / "worker.log")
        if fields["level"] == "WARNING" and "invalid_timestamp" in fields["message"]
    ]
    assert len(found) == 1, found
    message = found[0]["message"]
    assert message.startswith(f"the record at {chat}[")
    assert f"is invalid_timestamp (ts); it goes to {stopped.settings.topic_dead_letters}" in message
    assert "\n" not in message
    assert (found[0]["topic"], found[0]["reason"], found[0]["field"]) == (
        chat,
        "invalid_timestamp",
        "ts",
    )
    assert isinstance(found[0]["offset"], int)


def test_the_access_log_names_routes_not_paths(stopped: Running) -> None:
    access = [f for f in lines_of(stopped.tmp / "api.log") if f["logger"] == "api.access"]
    info = {(f["method"], f["route"], f["status"]) for f in access if f["level"] == "INFO"}
    assert ("GET", "unmatched", 404) in info
    # Answers below 400 are DEBUG: no line per point read unless asked for.
    debug = {(f["method"], f["route"], f["status"]) for f in access if f["level"] == "DEBUG"}
    assert ("GET", "/v1/users/{user_id}", 200) in debug
    assert ("GET", "/readyz", 200) in debug
    assert not {line for line in info if line[2] < 400}
