"""The four input topics' models and one parser from raw bytes to a typed event."""

from __future__ import annotations

from typing import Literal

from pydantic import TypeAdapter

from schemas.chat import ChatEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

Kind = Literal["live", "chat", "order", "touch"]
AnyEvent = LiveEvent | ChatEvent | OrderEvent | TouchEvent

EVENT_MODELS: dict[Kind, type[AnyEvent]] = {
    "live": LiveEvent,
    "chat": ChatEvent,
    "order": OrderEvent,
    "touch": TouchEvent,
}
TOPIC_KINDS: tuple[Kind, ...] = ("live", "chat", "order", "touch")

_ADAPTERS: dict[Kind, TypeAdapter[AnyEvent]] = {
    kind: TypeAdapter(model) for kind, model in EVENT_MODELS.items()
}


def parse_event(kind: Kind, raw: bytes | str) -> AnyEvent:
    """Validate one JSON event of a topic kind; raises pydantic.ValidationError on bad input."""
    return _ADAPTERS[kind].validate_json(raw)
