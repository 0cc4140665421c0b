"""Trigger rules (SPEC section 5): the rules file, its validation, and how a rule fires.

A rule names a subject (a user or a live room), a condition on the subject's current values,
a cooldown and an action label. It fires when its condition turns true (it did not hold at the
previous evaluation of that subject) and the subject's last firing of the rule is at least the
cooldown earlier, on the event clock. Firing marks live in the subject's own state, so they
survive restarts and replays with it, and the same history fires the same triggers.

User rules whose fields are all kept in the user's state (stage, orders, watch time) are
evaluated after every event and at every idle stage change; rules on model scores (RFM class,
churn probability, CLV) when the user's score document is computed, once per batch.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Value = str | int | float | None
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in")

# Fields a user rule may test: kept in the user's state (cheap, per event) ...
STATE_FIELDS: dict[str, type] = {
    "stage": str,
    "previous_stage": str,
    "order_count": int,
    "refund_count": int,
    "interactions": int,
    "reactivations": int,
    "monetary": float,
    "session_watch_seconds": float,
    "sentiment": str,
}
# ... or derived by the models, on the score document.
DOCUMENT_FIELDS: dict[str, type] = {
    "rfm_class": str,
    "segment": str,
    "r": int,
    "f": int,
    "m": int,
    "churn_probability": float,
    "p_alive": float,
    "expected_purchases": float,
    "expected_order_value": float,
    "clv": float,
    "atv": float,
    "engagement": float,
}
ROOM_FIELDS: dict[str, type] = {"comments": int, "negative": int, "negative_share": float}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class RulesError(ValueError):
    """The rules file cannot be used: the message names the rule and the problem."""


def duration_ms(text: str | int | float) -> int:
    """`30d`, `12h`, `5m`, `90s`, `250ms`, or a number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"{text!r} is not a duration")
        return int(text * 1000)
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (write e.g. 30d, 12h, 5m, 90s)")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def format_duration(ms: int) -> str:
    """The largest unit that writes `ms` exactly: 30d, 12h, 5m, 90s, 250ms."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Test(_Strict):
    """One field's test: each operator given must hold."""

    eq: Value = None
    ne: Value = None
    gt: float | None = Field(default=None, allow_inf_nan=False)
    gte: float | None = Field(default=None, allow_inf_nan=False)
    lt: float | None = Field(default=None, allow_inf_nan=False)
    lte: float | None = Field(default=None, allow_inf_nan=False)
    in_: list[Value] | None = Field(default=None, alias="in")

    def expression(self, name: str, literal: Callable[[Any], str]) -> str:
        """This test on field `name` of a mapping `v`, as a Python expression (see _compile)."""
        given = self.model_fields_set
        terms: list[str] = []

        def x() -> str:  # the field is looked up once, by the test's first term
            return "x" if terms else f"(x := v.get({name!r}))"

        if "eq" in given:
            terms.append(f"{x()} == {literal(self.eq)}")
        if "ne" in given:
            terms.append(f"{x()} != {literal(self.ne)}")
        if "in_" in given:
            terms.append(f"{x()} in {literal(tuple(self.in_ or ()))}")
        bounds = [(s, b) for op, s in _BOUNDS if (b := getattr(self, op)) is not None]
        if bounds:  # a number, not a bool, not NaN (inline: a call costs more than the test)
            terms.append(f"isinstance({x()}, _NUMBER) and x.__class__ is not bool and x == x")
        terms += [f"x {symbol} {literal(bound)}" for symbol, bound in bounds]
        return " and ".join(f"({t})" for t in terms) or "True"

    def holds(self, value: Value) -> bool:
        given = self.model_fields_set
        if "eq" in given and value != self.eq:
            return False
        if "ne" in given and value == self.ne:
            return False
        if "in_" in given and value not in (self.in_ or []):
            return False
        bounds = (self.gt, self.gte, self.lt, self.lte)
        if any(b is not None for b in bounds):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            if math.isnan(value):
                return False
            if self.gt is not None and not value > self.gt:
                return False
            if self.gte is not None and not value >= self.gte:
                return False
            if self.lt is not None and not value < self.lt:
                return False
            if self.lte is not None and not value <= self.lte:
                return False
        return True


Condition = dict[str, Test]


class RuleSpec(_Strict):
    """A rule as written in the file."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    subject: Literal["user", "room"] = "user"
    when: dict[str, Any]
    cooldown: str | int | float
    action: str = Field(min_length=1, max_length=128)
    window: str | int | float | None = None  # room rules: the sliding window
    attribution_window: str | int | float = "7d"  # user rules: orders counted after it fires
    description: str = ""

    @field_validator("cooldown", "window", "attribution_window")
    @classmethod
    def _duration(cls, value: str | int | float | None) -> str | int | float | None:
        if value is not None:
            duration_ms(value)
        return value


_BOUNDS = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))


Tests = tuple[tuple[str, Test], ...]


def _compile(all_of: Tests, any_of: tuple[Tests, ...]) -> Callable[[Mapping[str, Value]], bool]:
    """One function for the whole condition: rules run on every event, so they are compiled
    from their validated tests (field names from a fixed list, values passed as constants)
    rather than interpreted test by test."""
    constants: list[Any] = []

    def literal(value: Any) -> str:
        constants.append(value)
        return f"c[{len(constants) - 1}]"

    def conjunction(tests: Tests) -> str:
        return " and ".join(f"({test.expression(name, literal)})" for name, test in tests)

    source = conjunction(all_of) or "True"
    if any_of:
        source += " and (" + " or ".join(f"({conjunction(g)})" for g in any_of) + ")"
    scope = {"__builtins__": {}, "isinstance": isinstance, "bool": bool, "_NUMBER": (int, float)}
    scope["c"] = tuple(constants)
    check: Callable[[Mapping[str, Value]], bool] = eval(f"lambda v: {source}", scope)
    return check


@dataclass(frozen=True)
class Rule:
    """A validated rule, ready to evaluate."""

    name: str
    subject: Literal["user", "room"]
    all_of: tuple[tuple[str, Test], ...]
    any_of: tuple[tuple[tuple[str, Test], ...], ...]
    cooldown_ms: int
    action: str
    window_ms: int = 0
    attribution_ms: int = 7 * 86_400_000
    description: str = ""
    check: Callable[[Mapping[str, Value]], bool] = field(
        default=lambda _values: False, compare=False, repr=False
    )

    @property
    def fields(self) -> frozenset[str]:
        names = {name for name, _ in self.all_of}
        for group in self.any_of:
            names |= {name for name, _ in group}
        return frozenset(names)

    @property
    def on_document(self) -> bool:
        """True when the rule needs model scores: evaluated with the score document."""
        return bool(self.fields & DOCUMENT_FIELDS.keys())

    def holds(self, values: Mapping[str, Value]) -> bool:
        """The condition, test by test (the compiled `check` must always agree)."""
        if not all(test.holds(values.get(name)) for name, test in self.all_of):
            return False
        return not self.any_of or any(
            all(test.holds(values.get(name)) for name, test in group) for group in self.any_of
        )

    def reason(self, values: Mapping[str, Value]) -> dict[str, Value]:
        """The values the rule looked at (all of a room's counts), as they were when it fired."""
        names = self.fields | (ROOM_FIELDS.keys() if self.subject == "room" else set())
        return {name: values.get(name) for name in sorted(names)}


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str = "<defaults>"

    @property
    def names(self) -> list[str]:
        return [rule.name for rule in self.rules]

    def by_name(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    @property
    def user_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.subject == "user")

    @property
    def room_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.subject == "room")


def _problems(exc: ValidationError, what: str) -> str:
    """pydantic's errors as `field: message` parts, one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
    )


def _tests(rule: str, where: str, raw: Any, known: dict[str, type]) -> tuple[tuple[str, Test], ...]:
    if not isinstance(raw, dict) or not raw:
        raise RulesError(f"rule {rule!r}: {where} must be a mapping of field to test")
    out = []
    for name, spec in raw.items():
        if name not in known:
            raise RulesError(
                f"rule {rule!r}: unknown field {name!r} in {where} "
                f"(known: {', '.join(sorted(known))})"
            )
        if not isinstance(spec, dict) or not spec:
            raise RulesError(
                f"rule {rule!r}: field {name!r} needs a test such as {{gte: 1}} "
                f"(operators: {', '.join(OPERATORS)})"
            )
        try:
            test = Test.model_validate(spec)
        except ValidationError as exc:
            raise RulesError(f"rule {rule!r}: field {name!r}: {_problems(exc, 'test')}") from None
        numeric = known[name] in (int, float)
        if not numeric and any(getattr(test, op) is not None for op in ("gt", "gte", "lt", "lte")):
            raise RulesError(f"rule {rule!r}: field {name!r} is text; compare it with eq/ne/in")
        out.append((name, test))
    return tuple(out)


def build_rule(spec: RuleSpec) -> Rule:
    known = ROOM_FIELDS if spec.subject == "room" else STATE_FIELDS | DOCUMENT_FIELDS
    when = dict(spec.when)
    groups = when.pop("any", None)
    all_of = _tests(spec.name, "when", when, known) if when else ()
    any_of: tuple[tuple[tuple[str, Test], ...], ...] = ()
    if groups is not None:
        if not isinstance(groups, list) or not groups:
            raise RulesError(f"rule {spec.name!r}: `any` must be a list of field tests")
        any_of = tuple(_tests(spec.name, "any", g, known) for g in groups)
    if not all_of and not any_of:
        raise RulesError(f"rule {spec.name!r}: `when` has no test")
    window_ms = 0
    if spec.subject == "room":
        if spec.window is None:
            raise RulesError(f"rule {spec.name!r}: a room rule needs a `window` (e.g. 5m)")
        window_ms = duration_ms(spec.window)
        if window_ms <= 0:
            raise RulesError(f"rule {spec.name!r}: the window must be longer than zero")
    elif spec.window is not None:
        raise RulesError(f"rule {spec.name!r}: `window` is for room rules only")
    return Rule(
        name=spec.name,
        subject=spec.subject,
        all_of=all_of,
        any_of=any_of,
        cooldown_ms=duration_ms(spec.cooldown),
        action=spec.action,
        window_ms=window_ms,
        attribution_ms=duration_ms(spec.attribution_window),
        description=spec.description,
        check=_compile(all_of, any_of),
    )


def parse_rules(text: str, source: str = "<text>") -> RuleSet:
    """Rules from YAML text; raises RulesError naming the rule and the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RulesError(f"{source}: needs a top-level `rules:` list")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["rules"]):
        label = raw.get("name", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            spec = RuleSpec.model_validate(raw)
        except ValidationError as exc:
            raise RulesError(f"{source}: rule {label!r}: {_problems(exc, 'rule')}") from None
        try:
            rule = build_rule(spec)
        except RulesError as exc:
            raise RulesError(f"{source}: {exc}") from None
        if rule.name in seen:
            raise RulesError(f"{source}: rule {rule.name!r} is defined twice")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(tuple(rules), source)


DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "triggers.yaml"


def load_rules(path: Path | None = None) -> RuleSet:
    path = path or DEFAULT_RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    return parse_rules(text, str(path))


def trigger_id(rule: str, subject_id: str, at_ms: int) -> str:
    """The same (rule, subject, event time) always gets the same id, in every process."""
    raw = f"{rule}\x1f{subject_id}\x1f{at_ms}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


@dataclass(frozen=True)
class Fired:
    """A rule that fired for a subject at an event time, with the values that fired it."""

    id: str
    rule: str
    action: str
    subject_type: Literal["user", "room"]
    subject_id: str
    at_ms: int
    reason: dict[str, Value]


@dataclass
class Marks:
    """A subject's firing marks: rules whose condition held at the last evaluation (a short
    list), and when each rule last fired (event time)."""

    held: list[str] = field(default_factory=list)
    fired: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"held": sorted(self.held), "fired": dict(self.fired)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Marks:
        if not data:
            return cls()
        return cls(sorted(set(data.get("held") or ())), dict(data.get("fired") or {}))


def evaluate(
    rules: tuple[Rule, ...],
    marks: Marks,
    values: Mapping[str, Value],
    subject_type: Literal["user", "room"],
    subject_id: str,
    at_ms: int,
    record: bool = True,
) -> list[Fired]:
    """Evaluate `rules` on the subject's values at `at_ms`; updates `marks` (the firing
    times too, unless `record` is false: a fact of the past fires nothing and starts no
    cooldown, but its rules are remembered as holding)."""
    out: list[Fired] = []
    held = marks.held
    for rule in rules:
        if not rule.check(values):
            if rule.name in held:
                held.remove(rule.name)
            continue
        if rule.name in held:
            continue
        held.append(rule.name)
        last = marks.fired.get(rule.name)
        if last is not None and at_ms - last < rule.cooldown_ms:
            continue
        if record:
            marks.fired[rule.name] = at_ms
        out.append(
            Fired(
                id=trigger_id(rule.name, subject_id, at_ms),
                rule=rule.name,
                action=rule.action,
                subject_type=subject_type,
                subject_id=subject_id,
                at_ms=at_ms,
                reason=rule.reason(values),
            )
        )
    return out
