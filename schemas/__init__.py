"""Event contracts of the four input topics and the score document."""

from schemas.common import EventBase, parse_event_time
from schemas.events import EVENT_MODELS, TOPIC_KINDS, AnyEvent, parse_event
from schemas.scores import ScoreDocument

__all__ = [
    "EVENT_MODELS",
    "TOPIC_KINDS",
    "AnyEvent",
    "EventBase",
    "ScoreDocument",
    "parse_event",
    "parse_event_time",
]
