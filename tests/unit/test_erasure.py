"""Erasure of a person, the parts without a broker: the records, the store's tombstones, the
sink's deletes (ordered before the next inserts), the trigger feed, the API's status."""

from __future__ import annotations

import orjson
import pytest

from agents.partitions import take_changes
from api.routes.erasures import status_of
from api.triggers_view import TriggersView
from pipeline.domain.state import UserState
from pipeline.domain.triggers import load_rules
from pipeline.erasure import Erasure, ErasureLog, subject_hash
from pipeline.settings import Settings
from pipeline.store import UserStore
from pipeline.stream.compacted import CompactedView
from sinks.base import BatchingSink
from sinks.exceptions import SinkError
from sinks.memory import MemoryClient


def test_a_request_round_trips_and_its_completion_no_longer_names_the_person() -> None:
    request = Erasure.request("e1", "u1", 1_000)
    assert Erasure.from_bytes(request.to_bytes()) == request
    done = request.completed(2_000, True, {"events": 3}, (1, 7))
    raw = done.to_bytes()
    assert b"u1" not in raw
    back = Erasure.from_bytes(raw)
    assert back.status == "complete"
    assert back.user_id is None
    assert back.subject == subject_hash("u1")
    assert back.scores_tombstone == (1, 7)
    assert back.rows_deleted == {"events": 3}
    for bad in (b"{}", b"nope", b'{"erasure_id":"x","subject":"s","status":"gone",'
                b'"requested_ms":1}'):  # fmt: skip
        with pytest.raises(ValueError, match="erasure"):
            Erasure.from_bytes(bad)


def test_records_written_before_the_request_belong_to_the_erased_person() -> None:
    log = ErasureLog()
    assert not log.erased_before("u1", 0)
    request = Erasure.request("e1", "u1", 1_000)
    log.apply(request)
    assert [e.erasure_id for e in log.pending()] == ["e1"]
    assert log.erased_before("u1", 999)
    assert not log.erased_before("u1", 1_000)  # at or after the request: a new person
    assert not log.erased_before("u2", 0)
    # Completed (no user id): still recognised by its hash, no longer pending.
    log.apply(request.completed(1_500, True, {}, None))
    assert log.pending() == []
    assert log.erased_before("u1", 999)
    # A second erasure of the same id later moves the cutoff on.
    log.apply(Erasure.request("e2", "u1", 5_000))
    assert log.erased_before("u1", 4_000)


def test_a_removed_user_is_a_changelog_tombstone_unless_it_came_back() -> None:
    store = UserStore()
    store.put(UserState("a"), 0)
    store.put(UserState("b"), 0)
    take_changes(store)
    assert store.remove("a") == 0
    assert store.remove("nobody") is None
    assert "a" not in store
    assert [u.user_id for u in store.users_of(0)] == ["b"]
    assert take_changes(store) == {0: [(b"a", None)]}
    assert take_changes(store) == {}
    # Erased, then a new person with the same id before the checkpoint: only its state.
    store.remove("b")
    store.put(UserState("b", order_count=1), 0)
    changes = take_changes(store)
    assert [key for key, _ in changes[0]] == [b"b"]
    assert changes[0][0][1] is not None
    # A checkpoint that could not complete writes the tombstone again with the next one.
    store.remove("b")
    failed = take_changes(store)
    store.mark_removed("b", 0)
    assert take_changes(store) == failed


def test_the_sink_drops_buffered_rows_and_deletes_stored_ones_before_new_inserts() -> None:
    client = MemoryClient()
    client.ensure_schema()
    sink = BatchingSink(client)
    sink.add("events", {"event_id": "old1", "user_id": "u1"})
    sink.add("events", {"event_id": "k1", "user_id": "u2"})
    sink.add("triggers", {"id": "t1", "subject_type": "user", "subject_id": "u1"})
    sink.add("triggers", {"id": "t2", "subject_type": "room", "subject_id": "u1"})
    sink.flush()
    sink.add("events", {"event_id": "old2", "user_id": "u1"})  # buffered, not stored yet
    sink.erase("u1")
    assert sink.pending == 0
    sink.add("events", {"event_id": "new1", "user_id": "u1"})  # a new person, same id
    sink.flush()
    assert [r["event_id"] for r in client.tables["events"]] == ["k1", "new1"]
    assert [r["id"] for r in client.tables["triggers"]] == ["t2"]  # a room of that name stays
    assert sink.erased["u1"]["events"] == 1
    assert sink.erased["u1"]["triggers"] == 1


class DownClient(MemoryClient):
    down = True

    def erase_users(self, user_ids: list[str], timeout_s: float = 60.0) -> dict[str, int]:
        if self.down:
            raise ConnectionError("store unreachable")
        return super().erase_users(user_ids, timeout_s)


def test_a_delete_that_fails_keeps_the_erasure_and_the_rows_after_it() -> None:
    client = DownClient()
    client.ensure_schema()
    sink = BatchingSink(client)
    client.insert("events", [{"event_id": "old", "user_id": "u1"}])
    sink.erase("u1")
    sink.add("events", {"event_id": "new", "user_id": "u1"})
    with pytest.raises(SinkError, match="erasure"):
        sink.flush()
    # Nothing inserted ahead of the delete (it would have deleted the new person's row).
    assert [r["event_id"] for r in client.tables["events"]] == ["old"]
    assert sink.pending == 1
    assert "u1" not in sink.erased
    client.down = False
    sink.flush()
    assert [r["event_id"] for r in client.tables["events"]] == ["new"]
    assert sink.erased["u1"]["events"] == 1


def trigger(trigger_id: str, subject: str, subject_type: str = "user") -> bytes:
    rule = "first_order" if subject_type == "user" else "room_negative_sentiment"
    return orjson.dumps({"id": trigger_id, "rule": rule, "subject_id": subject,
                         "subject_type": subject_type, "at_ms": 1})  # fmt: skip


def test_the_trigger_feed_forgets_an_erased_person_and_never_loads_them_again() -> None:
    view = TriggersView(Settings(), load_rules())
    view.add(0, 0, 1_000, trigger("t1", "u1"))
    view.add(0, 1, 1_000, trigger("t2", "u2"))
    view.add(0, 2, 1_000, trigger("t3", "u1", "room"))
    view.erased(Erasure.request("e1", "u1", 2_000))
    served = [orjson.loads(value)["id"] for value, _ in view.page({}, None, 10)[0]]
    assert served == ["t2", "t3"]
    # Loaded afterwards (a restart reading the topic): recorded before the request, dropped.
    fresh = TriggersView(Settings(), load_rules())
    fresh.erasures.apply(Erasure.request("e1", "u1", 2_000).completed(3_000, True, {}, None))
    assert not fresh.add(0, 0, 1_000, trigger("t1", "u1"))
    assert fresh.add(0, 1, 2_500, trigger("t4", "u1"))  # a new person's trigger


def test_an_erasure_is_complete_once_the_service_has_read_the_tombstone() -> None:
    scores = CompactedView(Settings(), "scores")
    done = Erasure.request("e1", "u1", 1_000).completed(2_000, True, {"events": 2}, (3, 10))
    assert status_of(done, scores).status == "requested"
    scores.positions[3] = 11
    answer = status_of(done, scores)
    assert answer.status == "complete"
    assert answer.rows_deleted == {"events": 2}
    assert answer.user_id is None
    assert answer.completed_at is not None
