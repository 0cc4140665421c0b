"""Trigger rules: the rules file, every default rule on a scripted sequence and its near miss,
cooldowns, stable ids, state kept across a restart, and attribution of touches and orders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.churn import ChurnModel
from pipeline.domain.rooms import RoomWindow
from pipeline.domain.stages import DAY_MS
from pipeline.domain.triggers import (
    DEFAULT_RULES_FILE,
    Marks,
    RulesError,
    duration_ms,
    evaluate,
    format_duration,
    load_rules,
    parse_rules,
    trigger_id,
)
from pipeline.leader import adopt
from pipeline.outcome import Outcome
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore, decode_user, encode_user
from pipeline.user_triggers import UserTriggers
from schemas.scores import RfmBlock
from schemas.triggers import Trigger

T0 = 1_760_000_000_000
NOW = datetime(2027, 6, 1, tzinfo=UTC)
# These tests replay months of history against a fixed wall clock: every fact counts as
# present (test_triggers_act_on_the_present tests the default).
HISTORY = Settings(clickhouse_url="memory://", trigger_max_age_seconds=10 * 365 * 86_400)
HOUR_MS = 3_600_000
SPEC_RULES = {
    "became_silent", "became_churned", "first_order", "repeat_buyer", "became_high_value",
    "churn_risk", "long_watch", "room_negative_sentiment",
}  # fmt: skip


def fired_rules(outcomes: list[Outcome]) -> list[str]:
    return [f.rule for o in outcomes for f, _ in o.fired]


class Script:
    """One user's events through a real scorer, with the triggers each step fired."""

    def __init__(self, user_id: str = "u1", store: UserStore | None = None) -> None:
        self.scorer = Scorer(HISTORY, store or UserStore())
        self.user_id = user_id
        self.n = 0

    def send(self, topic: str, type_: str, at_ms: int, **fields: Any) -> Outcome:
        self.n += 1
        data = {"event_id": f"{self.user_id}-{self.n}", "type": type_, "user_id": self.user_id,
                "ts": at_ms, **fields}  # fmt: skip
        return self.scorer.score(topic, orjson.dumps(data), now=NOW)

    def live(self, type_: str, at_ms: int, session: str = "s1", **fields: Any) -> Outcome:
        return self.send("live-events", type_, at_ms, room_id="r1", session_id=session, **fields)

    def order(self, type_: str, at_ms: int, order_id: str = "o1") -> Outcome:
        return self.send("order-events", type_, at_ms, order_id=order_id, amount="99.00",
                         currency="CNY", channel="live")  # fmt: skip

    def touch(self, type_: str, at_ms: int, trigger: str | None) -> Outcome:
        return self.send("touch-events", type_, at_ms, campaign_id="c1", channel="wecom",
                         trigger_id=trigger)  # fmt: skip

    def sweep(self, at_ms: int) -> list[Outcome]:
        return self.scorer.sweep(0, now=NOW, clock_ms=at_ms)


# -- the rules file ------------------------------------------------------------------------


def test_shipped_rules_are_the_spec_defaults() -> None:
    rules = load_rules()
    assert set(rules.names) == SPEC_RULES
    room = rules.by_name("room_negative_sentiment")
    assert room is not None
    assert (room.subject, room.window_ms, room.cooldown_ms) == ("room", 300_000, 600_000)
    long_watch = rules.by_name("long_watch")
    assert long_watch is not None
    assert not long_watch.on_document
    churn = rules.by_name("churn_risk")
    assert churn is not None
    assert churn.on_document


def rules_text(**changes: Any) -> str:
    rule: dict[str, Any] = {"name": "r1", "when": {"order_count": {"gte": 1}}, "cooldown": "1d",
                            "action": "a"}  # fmt: skip
    rule.update(changes)
    rule = {k: v for k, v in rule.items() if v is not None}
    return orjson.dumps({"rules": [rule]}).decode()  # JSON is YAML


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "not valid YAML"),
        ("just: text", "top-level `rules:` list"),
        (rules_text(when={"order_cnt": {"gte": 1}}), "rule 'r1': unknown field 'order_cnt'"),
        (rules_text(when={"order_count": {"more": 1}}), "rule 'r1': field 'order_count'"),
        (rules_text(when={"order_count": 1}), "rule 'r1': field 'order_count' needs a test"),
        (rules_text(when={"stage": {"gt": 1}}), "rule 'r1': field 'stage' is text"),
        (rules_text(when={}), "rule 'r1': `when` has no test"),
        (rules_text(when={"any": []}), "rule 'r1': `any` must be a list"),
        (rules_text(cooldown=None), "rule 'r1': cooldown: Field required"),
        (rules_text(cooldown="soon"), "rule 'r1': cooldown: Value error, 'soon' is not a duration"),
        (rules_text(cooldown=-5), "rule 'r1': cooldown"),
        (rules_text(name="Bad Name"), "rule 'Bad Name': name"),
        (rules_text(subject="room", when={"comments": {"gte": 2}}), "needs a `window`"),
        (rules_text(window="5m"), "rule 'r1': `window` is for room rules only"),
        (rules_text(subject="room", window="5m"), "rule 'r1': unknown field 'order_count'"),
        (rules_text(colour="red"), "rule 'r1': colour: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_rules_file_is_refused_naming_the_rule_and_the_problem(
    text: str, message: str
) -> None:
    with pytest.raises(RulesError, match=r"^rules\.yaml: ") as caught:
        parse_rules(text, "rules.yaml")
    assert message in str(caught.value)


def test_a_rule_defined_twice_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    one = orjson.loads(rules_text())["rules"][0]
    with pytest.raises(RulesError, match="rule 'r1' is defined twice"):
        parse_rules(orjson.dumps({"rules": [one, one]}).decode())
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_an_edited_copy_of_the_rules_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_RULES_FILE.read_text().replace("{gte: 10800}", "{gte: 3600}"))
    script = Script()
    script.scorer = Scorer(HISTORY, rules=load_rules(path))
    assert fired_rules([script.live("watch", T0, seconds=3600)]) == ["long_watch"]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30d", 30 * DAY_MS),
        ("12h", 12 * HOUR_MS),
        ("5m", 300_000),
        ("90s", 90_000),
        ("250ms", 250),
        (1.5, 1500),
    ],
)
def test_durations(text: str | float, ms: int) -> None:
    assert duration_ms(text) == ms
    if isinstance(text, str):
        assert format_duration(ms) == text


# -- every default rule, and its near miss -------------------------------------------------


def test_became_silent_and_churned_fire_at_the_rule_time_and_not_a_millisecond_before() -> None:
    script = Script()
    assert fired_rules([script.live("like", T0)]) == []
    # A watermark settles the times strictly before it: at exactly T0 + 30 days an event of
    # another topic stamped then may still come, and it is on time.
    assert fired_rules(script.sweep(T0 + 30 * DAY_MS)) == []
    silent = script.sweep(T0 + 30 * DAY_MS + 1)
    assert fired_rules(silent) == ["became_silent"]
    fired = silent[0].fired[0][0]
    assert fired.at_ms == T0 + 30 * DAY_MS
    assert fired.reason == {"stage": "silent"}
    assert fired_rules(script.sweep(T0 + 90 * DAY_MS)) == []
    assert fired_rules(script.sweep(T0 + 90 * DAY_MS + 1)) == ["became_churned"]


def test_an_event_at_the_watermark_s_own_time_is_on_time() -> None:
    """The watermark reaches the exact time the user would turn silent; an event of another
    topic stamped at that same millisecond then comes: the user never was silent, so nothing
    fires and nothing is corrected."""
    script = Script()
    script.live("like", T0)
    assert script.sweep(T0 + 30 * DAY_MS) == []
    outcome = script.send("chat-events", "message", T0 + 30 * DAY_MS, group_id="g1",
                          text="hi")  # fmt: skip
    assert fired_rules([outcome]) == []
    assert [t for t in outcome.transitions if t.retracted] == []
    user = script.scorer.store.get("u1")
    assert user is not None
    assert [h[1] for h in user.history] == ["potential"]


def test_stage_rules_fire_for_idle_changes_found_when_the_next_event_comes() -> None:
    script = Script()
    script.live("like", T0)
    # No sweep in between: the next event finds the user went silent, then churned.
    outcome = script.live("like", T0 + 100 * DAY_MS)
    assert [(f.rule, f.at_ms) for f, _ in outcome.fired] == [
        ("became_silent", T0 + 30 * DAY_MS), ("became_churned", T0 + 90 * DAY_MS)
    ]  # fmt: skip


def test_first_and_repeat_orders() -> None:
    script = Script()
    assert fired_rules([script.order("order_created", T0)]) == []  # near miss: not paid
    assert fired_rules([script.order("order_paid", T0 + 1)]) == ["first_order"]
    assert fired_rules([script.order("order_refunded", T0 + 2)]) == []  # near miss
    assert fired_rules([script.order("order_paid", T0 + 3, "o2")]) == ["repeat_buyer"]
    assert fired_rules([script.order("order_paid", T0 + 4, "o3")]) == []  # already held


def test_long_watch_counts_one_session_only() -> None:
    script = Script()
    assert fired_rules([script.live("watch", T0, seconds=3600)]) == []
    assert fired_rules([script.live("watch", T0 + HOUR_MS, seconds=3600)]) == []
    # Near miss: the third hour is in another broadcast.
    assert fired_rules([script.live("watch", T0 + 2 * HOUR_MS, "s2", seconds=3600)]) == []
    assert fired_rules([script.live("watch", T0 + 3 * HOUR_MS, "s2", seconds=3599)]) == []
    outcome = script.live("watch", T0 + 4 * HOUR_MS, "s2", seconds=3601)
    assert fired_rules([outcome]) == ["long_watch"]
    assert outcome.fired[0][0].reason == {"session_watch_seconds": 10800.0}


def document_of(script: Script, **changes: Any) -> Any:
    outcome = script.live("like", T0)
    doc = outcome.document
    assert doc is not None
    return doc.model_copy(update=changes)


def rfm(rfm_class: str) -> RfmBlock:
    return RfmBlock(recency_days=1, frequency=3, monetary=300, r=5, f=5, m=5,
                    segment="Champions", rfm_class=rfm_class)  # type: ignore[arg-type]  # fmt: skip


def test_became_high_value_fires_on_class_a_only() -> None:
    script = Script()
    triggers = script.scorer.triggers
    user = script.scorer.store.get("u1") or script.live("like", T0).user
    doc = document_of(script)
    assert user is not None
    assert [
        f.rule for f in triggers.on_document(user, doc.model_copy(update={"rfm": rfm("B")}))
    ] == []
    fired = triggers.on_document(user, doc.model_copy(update={"rfm": rfm("A")}))
    assert [f.rule for f in fired] == ["became_high_value"]
    assert fired[0].reason == {"rfm_class": "A"}


def learn_enough(model: ChurnModel) -> None:
    """Forty clear labels of each class: a model that is ready by the default rules."""
    churned = {"idle_days": 80.0, "log_interactions_30d": 0.0, "has_paid": 0.0}
    returned = {"idle_days": 35.0, "log_interactions_30d": 2.0, "has_paid": 1.0}
    for _ in range(40):
        model.learn(churned, True)
        model.learn(returned, False)


def test_churn_risk_waits_for_a_ready_churn_model() -> None:
    # The demo's case: churn_risk fired for 1,411 of 2,000 users, 530 of them before the
    # model had seen one churned label. Until the model is ready its probability is in no
    # document, so no rule on it can fire; once ready, documents carry it.
    script = Script()
    for i in range(10):  # ten interactions in a month: active
        script.live("like", T0 + i)
    user = script.scorer.store.get("u1")
    assert user is not None
    enricher = script.scorer.enricher
    assert enricher.churn_not_ready() == [
        "0 churned labels of the 30 needed",
        "0 returned labels of the 30 needed",
    ]
    doc = document_of(script)
    assert doc.churn_probability is None
    assert script.scorer.triggers.on_document(user, doc) == []
    learn_enough(enricher.models.churn)
    assert enricher.churn_not_ready() == []
    # Ready: silent users get a probability; active ones, whom the model was not trained on
    # (it learns at the moment users turn silent), none.
    assert script.scorer.document(user, NOW).churn_probability is None
    script.sweep(T0 + 31 * DAY_MS)
    probability = script.scorer.document(user, NOW).churn_probability
    assert probability is not None
    assert 0.0 <= probability <= 1.0


def test_churn_risk_is_for_silent_users_only() -> None:
    script = Script()
    for i in range(10):  # ten interactions in a month: active
        script.live("like", T0 + i)
    user = script.scorer.store.get("u1")
    assert user is not None
    assert user.stage is not None
    assert user.stage.value == "active"
    triggers = script.scorer.triggers
    doc = script.scorer.document(user, NOW)
    # An active user: the rule is not for them (and documents give them no probability).
    assert triggers.on_document(user, doc.model_copy(update={"churn_probability": 0.9})) == []
    script.sweep(T0 + 31 * DAY_MS)  # a month without an interaction: silent
    assert user.stage is not None
    assert user.stage.value == "silent"
    doc = script.scorer.document(user, NOW)
    assert triggers.on_document(user, doc.model_copy(update={"churn_probability": 0.69})) == []
    fired = triggers.on_document(user, doc.model_copy(update={"churn_probability": 0.7}))
    assert [f.rule for f in fired] == ["churn_risk"]


def comments(
    room: RoomWindow, count: int, negative: int, spacing_ms: int, start: int = T0
) -> list[str]:
    rules = load_rules().room_rules
    fired: list[str] = []
    for i in range(count):
        _, out = room.add(f"c{start}-{i}", start + i * spacing_ms, i < negative, rules, 60_000)
        fired += [f.rule for f in out]
    return fired


def test_room_negative_sentiment_and_its_near_misses() -> None:
    assert comments(RoomWindow("r1"), 20, 7, 1000) == ["room_negative_sentiment"]
    assert comments(RoomWindow("r1"), 19, 7, 1000) == []  # too few comments
    assert comments(RoomWindow("r1"), 20, 6, 1000) == []  # 30% is not more than 30%
    # 20 comments, but over more than five minutes: never 20 inside the window.
    assert comments(RoomWindow("r1"), 20, 20, 16_000) == []


def test_a_room_counts_a_comment_once_and_drops_one_too_late() -> None:
    room = RoomWindow("r1")
    rules = load_rules().room_rules
    assert room.add("a", T0, True, rules, 60_000)[0] == "counted"
    assert room.add("a", T0, True, rules, 60_000)[0] == "duplicate"
    assert room.add("b", T0 + 10 * 60_000, False, rules, 60_000)[0] == "counted"
    assert room.add("c", T0 + 10 * 60_000 - 6 * 60_000 - 1, False, rules, 60_000)[0] == "late"
    assert room.counts(300_000)["comments"] == 1
    again = RoomWindow.from_dict(orjson.loads(orjson.dumps(room.to_dict())))
    assert again == room


# -- cooldowns, ids, restarts --------------------------------------------------------------


def test_cooldown_per_subject_and_rule_on_the_event_clock() -> None:
    rule = parse_rules(rules_text(when={"monetary": {"gte": 100}})).rules
    marks = {"u1": Marks(), "u2": Marks()}

    def fire(value: float, at: int, subject: str = "u1") -> list[str]:
        values = {"monetary": value}
        return [f.id for f in evaluate(rule, marks[subject], values, "user", subject, at)]

    first = fire(100, T0)
    assert first == [trigger_id("r1", "u1", T0)]
    assert fire(50, T0 + 1) == []  # no longer holds
    assert fire(150, T0 + DAY_MS - 1) == []  # holds again, inside the cooldown
    assert fire(50, T0 + DAY_MS + 1) == []
    assert fire(150, T0 + DAY_MS + 2) == [trigger_id("r1", "u1", T0 + DAY_MS + 2)]
    assert len(fire(150, T0 + DAY_MS + 3, subject="u2")) == 1  # each subject has its own


def test_the_cooldown_survives_a_restart_and_a_replay_fires_nothing_again() -> None:
    script = Script()
    script.live("like", T0)
    assert fired_rules(script.sweep(T0 + 30 * DAY_MS + 1)) == ["became_silent"]
    # The worker restarts: the user comes back from the changelog record.
    user = script.scorer.store.get("u1")
    assert user is not None
    restored, _ = decode_user(encode_user(user, 0))
    store = UserStore()
    store.load(restored, 0)
    again = Script(store=store)
    again.n = script.n
    # The events since the last checkpoint are replayed: duplicates, nothing fires.
    script.n = 0
    replay = Script(store=store)
    assert replay.live("like", T0).duplicate
    # Back within the cooldown and silent again: not a second trigger.
    assert fired_rules([again.live("like", T0 + 31 * DAY_MS)]) == []
    assert fired_rules(again.sweep(T0 + 31 * DAY_MS + 30 * DAY_MS)) == []
    # (The user went silent again 61 days after the first event; the first trigger was at 30.)
    assert fired_rules(again.sweep(T0 + 61 * DAY_MS + 1)) == ["became_silent"]


def test_a_replay_from_scratch_fires_the_same_triggers_with_the_same_ids() -> None:
    def run() -> list[tuple[str, str, int]]:
        script = Script()
        out = [script.order("order_paid", T0), script.live("watch", T0 + 5, seconds=11_000)]
        out += script.sweep(T0 + 120 * DAY_MS)
        return [(f.id, f.rule, f.at_ms) for o in out for f, _ in o.fired]

    first = run()
    assert [rule for _, rule, _ in first] == [
        "first_order", "long_watch", "became_silent", "became_churned"
    ]  # fmt: skip
    assert run() == first


def test_the_published_record_follows_the_trigger_schema() -> None:
    script = Script()
    fired, message = script.order("order_paid", T0).fired[0]
    record = Trigger.model_validate_json(message)
    assert (record.id, record.rule, record.action) == (
        fired.id,
        "first_order",
        "invite_to_community",
    )
    assert (record.subject_type, record.subject_id, record.at_ms) == ("user", "u1", T0)
    assert record.reason == {"order_count": 1}
    assert record.fired_at == NOW


# -- attribution ---------------------------------------------------------------------------


def test_touches_and_orders_after_a_trigger_are_its_outcomes() -> None:
    script = Script()
    fired = script.order("order_paid", T0).fired[0][0]
    outcomes = []
    for kind in ("touch_sent", "touch_opened", "touch_clicked"):
        outcomes += [row for t, row in script.touch(kind, T0 + 10, fired.id).rows
                     if t == "trigger_outcomes"]  # fmt: skip
    assert [(r["rule"], r["outcome"], r["trigger_id"]) for r in outcomes] == [
        ("first_order", kind, fired.id) for kind in ("sent", "opened", "clicked")
    ]
    # A paid order inside the window counts (the second order also fires repeat_buyer).
    second = script.order("order_paid", T0 + 3 * DAY_MS, "o2")
    rows = [row for t, row in second.rows if t == "trigger_outcomes"]
    assert [(r["rule"], r["outcome"], str(r["amount_base"])) for r in rows] == [
        ("first_order", "order", "99.00")
    ]
    # One after the attribution window (7 days) does not count for first_order; it does
    # for repeat_buyer, which fired 3 days later.
    third = script.order("order_paid", T0 + 8 * DAY_MS, "o3")
    rows = [row for t, row in third.rows if t == "trigger_outcomes"]
    assert [r["rule"] for r in rows] == ["repeat_buyer"]
    # A touch naming a trigger the user does not have is still recorded, without a rule.
    stray = script.touch("touch_opened", T0 + 9 * DAY_MS, "nope")
    assert [(r["rule"], r["outcome"]) for t, r in stray.rows if t == "trigger_outcomes"] == [
        ("", "opened")
    ]


def test_user_triggers_without_model_rules_skip_documents() -> None:
    rules = parse_rules(rules_text())
    triggers = UserTriggers(rules)
    assert triggers.on_doc == ()


def test_the_demo_push_service_answers_user_triggers_only() -> None:
    import random

    from pipeline.demo import touches_for

    trigger = {"id": "t1", "rule": "first_order", "subject_type": "user", "subject_id": "u1",
               "at_ms": T0}  # fmt: skip
    now = datetime.fromtimestamp(T0 / 1000 + 3600, tz=UTC)
    kinds = set()
    for seed in range(50):
        touches = touches_for(trigger, random.Random(seed), now)
        assert touches[0].type == "touch_sent"
        assert all(t.trigger_id == "t1" and t.user_id == "u1" for t in touches)
        assert all(t.ts <= now for t in touches)
        kinds |= {t.type for t in touches}
    assert kinds == {"touch_sent", "touch_opened", "touch_clicked"}
    assert touches_for({**trigger, "subject_type": "room"}, random.Random(1), now) == []


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.none(), st.integers(-5, 5), st.floats(allow_nan=True), st.sampled_from(["A", "B", ""])
    ),
    other=st.one_of(st.none(), st.sampled_from(["active", "new"])),
)
def test_compiled_conditions_agree_with_the_tests_one_by_one(value: Any, other: Any) -> None:
    rules = parse_rules(
        orjson.dumps(
            {
                "rules": [
                    {
                        "name": "a",
                        "when": {"monetary": {"gte": 1, "lt": 3.5}},
                        "cooldown": 1,
                        "action": "x",
                    },
                    {
                        "name": "b",
                        "when": {
                            "rfm_class": {"in": ["A", "B"]},
                            "any": [{"stage": {"eq": "active"}}, {"monetary": {"ne": 2}}],
                        },
                        "cooldown": 1,
                        "action": "x",
                    },
                    {
                        "name": "c",
                        "when": {"churn_probability": {"gt": 0.5}, "stage": {"ne": None}},
                        "cooldown": 1,
                        "action": "x",
                    },
                ]
            }
        ).decode()
    )
    for rule in rules.rules:
        for field in rule.fields:
            values = {name: other if name == "stage" else value for name in rule.fields}
            values[field] = value
            assert rule.check(values) == rule.holds(values), (rule.name, values)


def test_a_worker_scores_churn_only_on_the_leader_s_model() -> None:
    """A worker's own churn model has seen its partitions' labels only: ready by its own
    count or not, documents carry no churn probability (and churn_risk cannot fire) until a
    model the leader published is in use; the labels say which models a document is on."""
    script = Script()
    enricher = script.scorer.enricher
    enricher.local_churn = False  # as in a worker
    for i in range(10):
        script.live("like", T0 + i)
    learn_enough(enricher.models.churn)
    assert enricher.churn_not_ready() == []
    script.sweep(T0 + 31 * DAY_MS)
    user = script.scorer.store.get("u1")
    assert user is not None
    doc = script.scorer.document(user, NOW)
    assert doc.stage == "silent"
    assert doc.churn_probability is None
    assert script.scorer.triggers.on_document(user, doc) == []
    assert doc.model_versions["churn"].startswith("churn-local-")
    assert doc.model_versions["rfm"].startswith("rfm-local-")
    # The leader's publication (here: the same model) is adopted: now it scores.
    adopt(enricher.models, {"versions": {"btyd": "btyd-0"}, "rfm": None},
          enricher.models.churn.to_bytes())  # fmt: skip
    enricher.models_changed()
    published = script.scorer.document(user, NOW)
    assert published.churn_probability is not None
    assert published.model_versions["churn"].startswith("churn-logreg-")
    # Scored on the features at the moment of silence, as the model learnt them: a month
    # later, still silent, the same probability (on later features it fell with idleness).
    script.sweep(T0 + 60 * DAY_MS)
    later = script.scorer.document(user, NOW)
    assert later.stage == "silent"
    assert later.churn_probability == published.churn_probability
