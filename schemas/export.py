"""JSON Schemas of the input topics and the score document, from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.client import DEFAULT_TOPICS
from schemas.common import SCHEMA_VERSION
from schemas.events import EVENT_MODELS, Kind
from schemas.limits import DEFAULT_EARLIEST_EVENT_TIME, STORE_LATEST
from schemas.live import _REQUIRED as LIVE_REQUIRED
from schemas.scores import ScoreDocument

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCORES_TOPIC = "user-scores"
SCORES_FILE = "score-document.schema.json"

# Fields a type needs beyond the common ones (the models check them in a model validator).
PER_TYPE_FIELDS: dict[Kind, dict[str, tuple[str, ...]]] = {
    "live": {event_type: (name,) for event_type, name in LIVE_REQUIRED.items()},
    "chat": {
        "message": ("text",),
        "reply": ("text",),
        "join_group": ("group_id",),
        "leave_group": ("group_id",),
    },
    "order": {},
    "touch": {},
}

# Event time as the models read it: RFC 3339 with an offset, or epoch milliseconds, from the
# default earliest event time (EARLIEST_EVENT_TIME) to what the stores hold.
_EARLIEST_MS = int(DEFAULT_EARLIEST_EVENT_TIME.timestamp() * 1000)
# The same bounds as patterns, for validators that do not check `format` (most do not): RFC
# 3339 with an offset from 1990 to 2105, and epoch milliseconds as text from 631152000000.
_RFC3339_FROM_1990 = (
    r"^(199[0-9]|20[0-9]{2}|210[0-5])-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_MILLIS_FROM_1990 = r"^(63[1-9][0-9]{9}|6[4-9][0-9]{10}|[7-9][0-9]{11}|[1-3][0-9]{12})$"
_EVENT_TIME = {
    "title": "Ts",
    "description": (
        "event time: RFC 3339 with a UTC offset, or epoch milliseconds (not seconds), from "
        f"{DEFAULT_EARLIEST_EVENT_TIME.date()} (the default EARLIEST_EVENT_TIME) to at most "
        "FUTURE_MARGIN_SECONDS ahead of the pipeline's clock"
    ),
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _RFC3339_FROM_1990},
        {"type": "string", "pattern": _MILLIS_FROM_1990},
        {
            "type": "number",
            "minimum": _EARLIEST_MS,
            "exclusiveMaximum": int(STORE_LATEST.timestamp() * 1000),
        },
    ],
}
# A decimal from 0 to 10^12 written as text, e.g. "129.90" (its fractional digits are at most
# the currency's minor units: none for JPY and KRW).
_DECIMAL_TEXT = r"^((0|[1-9][0-9]{0,11})(\.[0-9]{1,4}0*)?|1000000000000(\.0+)?)$"


def _minor_unit_rules() -> list[dict[str, Any]]:
    """Per currency group (ISO 4217 minor units, from CLDR through Babel): an amount written
    as text has at most that many fractional digits; with none, a number is whole."""
    from babel.numbers import list_currencies

    from schemas.order import minor_units

    groups: dict[int, list[str]] = {}
    for code in sorted(list_currencies()):
        if len(code) == 3 and code.isupper():
            groups.setdefault(minor_units(code), []).append(code)
    rules = []
    for digits, codes in sorted(groups.items()):
        if digits >= 4:
            continue
        fraction = rf"(\.[0-9]{{1,{digits}}}0*)?" if digits else r"(\.0+)?"
        amount: dict[str, Any] = {
            "anyOf": [
                {"type": "number", **({"multipleOf": 1} if digits == 0 else {})},
                {"type": "string", "pattern": rf"^[0-9]+{fraction}$"},
            ]
        }
        rules.append(
            {
                "if": {"properties": {"currency": {"enum": codes}}, "required": ["currency"]},
                "then": {"properties": {"amount": amount}},
            }
        )
    return rules


def topic_of(kind: Kind) -> str:
    """The default topic name of an event kind (SPEC section 2)."""
    return next(topic for model, topic in DEFAULT_TOPICS.items() if model is EVENT_MODELS[kind])


def _header(topic: str, what: str, description: str | None) -> dict[str, Any]:
    return {
        "$schema": DIALECT,
        "$id": f"urn:lifecycle:{topic}:schema_version:{SCHEMA_VERSION}",
        "title": f"{topic}: {what} (schema_version {SCHEMA_VERSION})",
        "description": description or "",
        "x-topic": topic,
        "x-key": "user_id",
        "x-schema-version": SCHEMA_VERSION,
    }


def _per_type(fields: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {
                "required": list(names),
                "properties": {name: {"not": {"type": "null"}} for name in names},
            },
        }
        for event_type, names in fields.items()
    ]


def event_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one input topic's events."""
    model = EVENT_MODELS[kind]
    body = model.model_json_schema()
    body.pop("title", None)
    description = body.pop("description", None)
    properties = body["properties"]
    properties["ts"] = dict(_EVENT_TIME)
    if "amount" in properties:
        for branch in properties["amount"]["anyOf"]:
            if branch.get("type") == "string":
                branch["pattern"] = _DECIMAL_TEXT
    if "amount" in properties:
        properties["amount"]["description"] = (
            "decimal in `currency`, 0 (a free order) to 10^12, with at most the currency's "
            "ISO 4217 minor units as fractional digits (none for JPY and KRW)"
        )
    rules = _per_type(PER_TYPE_FIELDS[kind])
    if kind == "order":
        rules += _minor_unit_rules()
    if rules:
        body["allOf"] = rules
    return {**_header(topic_of(kind), f"{kind} event", description), **body}


def score_schema() -> dict[str, Any]:
    """The JSON Schema of the score document on the compacted scores topic."""
    body = ScoreDocument.model_json_schema(mode="serialization")
    body.pop("title", None)
    description = body.pop("description", None)
    return {**_header(SCORES_TOPIC, "score document", description), **body}


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name to schema, for every published contract."""
    files = {f"{topic_of(kind)}.schema.json": event_schema(kind) for kind in EVENT_MODELS}
    files[SCORES_FILE] = score_schema()
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema to `directory` (created if missing); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
