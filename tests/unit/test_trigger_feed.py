"""The trigger feed's paging: stable cursors, oldest first, repeated records dropped."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from api.triggers_view import BadCursor, TriggersView, decode_cursor, encode_cursor
from pipeline.domain.triggers import load_rules
from pipeline.settings import Settings

HOUR_MS = 3_600_000


def record(rule: str, subject: str, at_ms: int, trigger: str | None = None) -> bytes:
    return orjson.dumps({"id": trigger or f"{rule}-{subject}-{at_ms}", "rule": rule,
                         "subject_id": subject, "at_ms": at_ms})  # fmt: skip


@pytest.fixture
def view() -> TriggersView:
    return TriggersView(Settings(), load_rules())


def ids(items: list[tuple[bytes, Any]]) -> list[str]:
    return [orjson.loads(value)["id"] for value, _ in items]


def test_cursors_round_trip_and_bad_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor({0: 5, 3: 12})) == {0: 5, 3: 12}
    assert decode_cursor(None) == {}
    assert decode_cursor("") == {}
    for bad in ("nonsense!", encode_cursor({0: 1}) + "x", "LTE"):
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_pages_are_oldest_first_across_partitions_and_continue_from_their_cursor(
    view: TriggersView,
) -> None:
    view.add(0, 0, 100, record("first_order", "u1", 1))
    view.add(1, 0, 50, record("first_order", "u2", 1))
    view.add(0, 1, 300, record("repeat_buyer", "u1", 2))
    view.add(1, 1, 200, record("long_watch", "u2", 2))
    items, cursor = view.page({}, None, 3)
    assert ids(items) == ["first_order-u2-1", "first_order-u1-1", "long_watch-u2-2"]
    assert items[-1][1] == cursor
    rest, end = view.page(cursor, None, 3)
    assert ids(rest) == ["repeat_buyer-u1-2"]
    assert end == {0: 2, 1: 2}
    # Nothing new: the same cursor again, and it stays valid for what comes later.
    assert view.page(end, None, 3) == ([], end)
    view.add(1, 2, 100, record("became_silent", "u2", 3))  # late and "older": still served
    assert ids(view.page(end, None, 3)[0]) == ["became_silent-u2-3"]


def test_a_rule_filter_passes_over_other_rules_and_moves_the_cursor(view: TriggersView) -> None:
    for i in range(5):
        view.add(0, i, i, record("first_order", f"u{i}", i))
    view.add(0, 5, 5, record("long_watch", "u9", 5))
    items, cursor = view.page({}, "long_watch", 10)
    assert ids(items) == ["long_watch-u9-5"]
    assert cursor == {0: 6}
    assert view.page({}, "became_churned", 10) == ([], {0: 6})


def test_a_trigger_published_twice_is_served_once(view: TriggersView) -> None:
    assert view.add(0, 0, 10, record("first_order", "u1", 1000, "t1"))
    assert not view.add(0, 1, 20, record("first_order", "u1", 1000, "t1"))  # same id
    # Another id for the same user and rule inside the cooldown (30 days): dropped too.
    assert not view.add(0, 2, 30, record("first_order", "u1", 1000 + HOUR_MS, "t2"))
    assert view.add(0, 3, 40, record("first_order", "u1", 1000 + 31 * 24 * HOUR_MS, "t3"))
    assert not view.add(0, 4, 50, b"{not json")
    assert ids(view.page({}, None, 10)[0]) == ["t1", "t3"]
    assert view.dropped == 3
    assert view.page({}, None, 10)[1] == {0: 5}
