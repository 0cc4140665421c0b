"""`lifecycle produce` against the real broker: valid events sent keyed by user, bad lines named."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.settings import Settings
from pipeline.topics import ensure_topics
from tests.integration.conftest import pipeline_env, settings_of
from tests.integration.parts import lifecycle, read_all, wait_until

pytestmark = pytest.mark.integration

TS = 1_700_000_000_000


@dataclass
class Target:
    """Topics of their own on the shared broker, and the environment naming them."""

    env: dict[str, str]
    settings: Settings
    tmp: Path

    def produce(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            lifecycle("produce", *args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def wait_for(self, topic: str, count: int) -> list[Any]:
        """Every record of `topic` once `count` have arrived (and no more were written)."""
        records = wait_until(
            lambda: _enough(read_all(self.settings.kafka_bootstrap, topic), count),
            30,
            f"{count} records on {topic}",
            step=0.1,
        )
        assert len(records) == count, [r.value for r in records]
        return records


def _enough(records: list[Any], count: int) -> list[Any] | None:
    return records if len(records) >= count else None


@pytest.fixture
def target(broker: str, tmp_path: Path) -> Target:
    prefix = f"pr{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, "memory://", tmp_path, prefix)
    settings = settings_of(env)
    asyncio.run(ensure_topics(settings))
    return Target(env, settings, tmp_path)


def _order(n: int, **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"o{n}", "type": "order_paid", "user_id": f"u{n % 3}", "ts": TS + n,
        "order_id": f"order-{n}", "amount": "19.90", "currency": "CNY", "channel": "live",
    }  # fmt: skip
    return {**event, **changes}


def _sent(records: list[Any]) -> dict[str, str]:
    """event_id to the key it was sent with; every key is the event's user_id."""
    sent = {}
    for record in records:
        value = orjson.loads(record.value)
        assert record.key == value["user_id"].encode()
        sent[value["event_id"]] = record.key.decode()
    return sent


def test_jsonl_file_sends_the_valid_events_and_names_the_bad_lines(target: Target) -> None:
    topic = target.settings.topic_order
    lines = [
        orjson.dumps(_order(1)),  # 1
        orjson.dumps(_order(2, amount="-5")),  # 2 invalid_amount
        b"{not json",  # 3 not_json
        b"",  # 4 blank: skipped
        orjson.dumps(_order(5, type="order_shipped")),  # 5 unknown_type
        orjson.dumps(_order(6, ts="2026-11-20T20:00:00+08:00", props={"src": "app"})),  # 6
        orjson.dumps(_order(7, amount="1.50", currency="JPY")),  # 7 invalid_amount
        b"[1, 2]",  # 8 not_an_object
        orjson.dumps({k: v for k, v in _order(9).items() if k != "order_id"}),  # 9
        orjson.dumps(_order(10, currency="XYZ")),  # 10 unknown_currency
        orjson.dumps(_order(11, ts=TS * 10)),  # 11 future_timestamp
        orjson.dumps(_order(12)),  # 12
    ]
    path = target.tmp / "orders.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = target.produce(str(path), "--topic", topic)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"sent 3 to {topic}",
        "rejected 8: invalid_amount x2 (lines 2, 7: amount), not_json x1 (line 3), "
        "unknown_type x1 (line 5: type), not_an_object x1 (line 8), "
        "missing_field x1 (line 9: order_id), unknown_currency x1 (line 10: currency), "
        "future_timestamp x1 (line 11: ts)",
    ]
    assert "line 2: invalid_amount (amount)" in result.stderr
    sent = _sent(target.wait_for(topic, 3))
    assert sent == {"o1": "u1", "o6": "u0", "o12": "u0"}


def test_csv_file_with_empty_and_json_cells(target: Target) -> None:
    topic = target.settings.topic_live
    path = target.tmp / "live.csv"
    path.write_text(
        "event_id,type,user_id,ts,room_id,session_id,seconds,text,props\n"
        f'l1,watch,alice,{TS},r1,s1,120,,"{{""device"": ""ios""}}"\n'  # 2
        f"l2,comment,bob,{TS},r1,s1,,hello,\n"  # 3
        f"l3,watch,carol,{TS},r1,s1,,,\n"  # 4 watch needs seconds
        f"l4,like,dave,{TS},r1,s1,,,{{oops\n"  # 5 props cell is not JSON
        f"l5,like,,{TS},r1,s1,,,\n"  # 6 user_id empty: absent
        f"l6,dance,erin,{TS},r1,s1,,,\n"  # 7 unknown type
        f"l7,like,frank,{TS},r1,s1,,,\n",  # 8
        encoding="utf-8",
    )

    result = target.produce(str(path), "--topic", topic)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"sent 3 to {topic}",
        "rejected 4: missing_field x2 (lines 4, 6: seconds, user_id), "
        "not_json x1 (line 5: props), unknown_type x1 (line 7: type)",
    ]
    records = target.wait_for(topic, 3)
    assert _sent(records) == {"l1": "alice", "l2": "bob", "l7": "frank"}
    first = next(orjson.loads(r.value) for r in records if r.key == b"alice")
    assert first["props"] == {"device": "ios"}
    assert first["seconds"] == 120
    assert "text" not in first


def test_rate_limited_run_sends_everything(target: Target) -> None:
    topic = target.settings.topic_order
    path = target.tmp / "orders.ndjson"
    path.write_bytes(b"".join(orjson.dumps(_order(n)) + b"\n" for n in range(1, 7)))

    result = target.produce(str(path), "--topic", topic, "--rate", "40")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"sent 6 to {topic}", "rejected 0"]
    assert set(_sent(target.wait_for(topic, 6))) == {f"o{n}" for n in range(1, 7)}


def test_usage_errors_exit_2(target: Target) -> None:
    path = target.tmp / "events.txt"
    path.write_bytes(orjson.dumps(_order(1)) + b"\n")
    unknown = target.produce(str(path), "--topic", "nope", "--format", "jsonl")
    assert unknown.returncode == 2
    assert "'nope' is not an input topic" in unknown.stderr
    assert target.settings.topic_touch in unknown.stderr
    no_format = target.produce(str(path), "--topic", target.settings.topic_order)
    assert no_format.returncode == 2
    assert "--format" in no_format.stderr
    missing = target.produce(str(target.tmp / "absent.jsonl"), "--topic", "x")
    assert missing.returncode == 2
    bad_rate = target.produce(str(path), "--topic", target.settings.topic_order, "--rate", "0")
    assert bad_rate.returncode == 2
