"""History loaded through `lifecycle backfill` while events stamped now flow on the same topics:
every user's final document and stage history equal the reference's, and no trigger fires for
the past."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from pipeline.reference import reference_scores
from schemas.client import EventProducer
from tests.integration.conftest import Running, chdb_pipeline, worker_metric
from tests.integration.parts import lifecycle, read_all, wait_until
from tests.integration.test_crash_recovery import (
    Message,
    assert_matches_reference,
    partition_of,
    workload,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("history")
    prefix = f"hl{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(broker, tmp, prefix, MODEL_REFIT_SECONDS="3600") as pipeline:
        yield pipeline


def live_events(running: Running, users: list[str], run: str) -> list[Message]:
    """Events stamped now: a like of each user, and first orders of three new buyers."""
    now = int(time.time() * 1000)
    out: list[Message] = []
    for n, user in enumerate(users):
        like = {"event_id": f"{run}-like-{n}", "type": "like", "user_id": user, "ts": now,
                "room_id": "room-1", "session_id": "live-now"}  # fmt: skip
        out.append((running.settings.topic_live, user.encode(), orjson.dumps(like)))
    return out + first_orders(running, f"{run}-buyer", now)


def first_orders(running: Running, prefix: str, ts: int) -> list[Message]:
    """First orders of three new buyers (`prefix`-0 to -2) at `ts`: each fires `first_order`
    when live."""
    out: list[Message] = []
    for n in range(3):
        buyer = f"{prefix}-{n}"
        order = {"event_id": f"{buyer}-order", "type": "order_paid", "user_id": buyer,
                 "ts": ts, "order_id": f"{buyer}-o", "amount": "66.00",
                 "currency": "CNY"}  # fmt: skip
        out.append((running.settings.topic_order, buyer.encode(), orjson.dumps(order)))
    return out


def recent_history(running: Running, history: list[Message], run: str) -> list[Message]:
    """First orders of three new buyers stamped seconds ago, after the rest of the history:
    live, each would fire `first_order`."""
    latest = max(orjson.loads(value)["ts"] for _, _, value in history)
    latest_ms = int(datetime.fromisoformat(latest).timestamp() * 1000)
    ts = max(int(time.time() * 1000) - 30_000, latest_ms + 1)
    return first_orders(running, f"{run}-recent", ts)


def folded_history(running: Running) -> dict[str, list[tuple[str | None, str, int]]]:
    """The stage history as a downstream service following `lifecycle-stage-changes` sees
    it: the latest version of each transition, without the retracted ones."""
    latest: dict[tuple[str, int, str], dict[str, Any]] = {}
    for record in read_all(running.settings.kafka_bootstrap, running.settings.topic_stage_changes):
        row = orjson.loads(record.value)
        key = (row["user_id"], row["at_ms"], row["to_stage"])
        if key not in latest or row["version"] >= latest[key]["version"]:
            latest[key] = row
    out: dict[str, list[tuple[str | None, str, int]]] = {}
    for (user_id, at_ms, to_stage), row in sorted(latest.items()):
        if row["valid"]:
            out.setdefault(user_id, []).append((row["from_stage"] or None, to_stage, at_ms))
    return out


def test_history_through_the_backfill_while_live_traffic_flows(running: Running) -> None:
    started_ms = int(time.time() * 1000)
    history = workload(running, users=120, days=120, seed=11)
    run = uuid.uuid4().hex[:6]
    history += recent_history(running, history, run)
    path = running.tmp / "history.jsonl"
    path.write_bytes(b"\n".join(value for _, _, value in history) + b"\n")
    users = sorted({key.decode() for _, key, _ in history})
    live = live_events(running, users[::4], run)

    backfill = subprocess.Popen(
        lifecycle("backfill", str(path)), env=running.env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sent: list[Message] = []
    with EventProducer(running.settings.kafka_bootstrap) as producer:
        # Live events go out while the backfill is loading, a few at a time.
        for topic, key, value in live:
            producer.send_raw(topic, value, key=key)
            sent.append((topic, key, value))
            if backfill.poll() is None:
                producer.flush()
        producer.flush()
    out, err = backfill.communicate(timeout=300)
    assert backfill.returncode == 0, err
    assert f"backfilled {len(history)} events" in out, out

    messages = history + sent
    wait_until(
        lambda: worker_metric(running, "lifecycle_events_in_total") >= len(messages),
        180, "every event read",
    )  # fmt: skip
    assert_matches_reference(running, messages)

    references = reference_scores(
        ((topic, value) for topic, _, value in messages),
        running.settings,
        partition_of(running.settings.topic_partitions),
    )
    expected = {
        user_id: [(f.value if f else None, t.value, at) for f, t, at in ref.transitions]
        for user_id, ref in references.items()
        if ref.transitions
    }
    last: dict[str, Any] = {}

    def histories_equal() -> bool:
        last["got"] = folded_history(running)
        return last["got"] == expected

    try:
        wait_until(histories_equal, 60, "the published stage histories", step=0.5)
    except AssertionError:
        wrong = [u for u in expected if last["got"].get(u) != expected[u]]
        sample = {u: (last["got"].get(u), expected[u]) for u in wrong[:2]}
        raise AssertionError(f"{len(wrong)} histories differ, e.g. {sample}") from None

    triggers = [
        orjson.loads(r.value)
        for r in read_all(running.settings.kafka_bootstrap, running.settings.topic_triggers)
    ]
    max_age_ms = int(running.settings.trigger_max_age_seconds * 1000)
    past = [t for t in triggers if t["at_ms"] < started_ms - max_age_ms]
    assert past == [], f"{len(past)} triggers fired for the past, e.g. {past[:2]}"
    # History fires nothing however recent: first orders of the backfill seconds old.
    recent = [t for t in triggers if t["subject_id"].startswith(f"{run}-recent-")]
    assert recent == [], f"triggers fired for backfilled events, e.g. {recent[:2]}"
    fired_now = {(t["rule"], t["subject_id"]) for t in triggers}
    assert {("first_order", f"{run}-buyer-{n}") for n in range(3)} <= fired_now
