"""The API's view of the scores topic: the latest score document per user."""

from __future__ import annotations

from api.user_index import UserIndex
from pipeline.settings import Settings
from pipeline.stream.compacted import CompactedView

__all__ = ["CompactedView", "ScoresView"]


class ScoresView(CompactedView):
    """The latest score document per user, and an index of them for lists and counts."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.topic_scores)
        self.index = UserIndex()

    def on_record(self, key: str, value: bytes | None) -> None:
        self.index.apply(key, value)
