"""The API's view of the erasures topic: each erasure's latest record, for
`GET /v1/erasures/{id}`, and the people whose triggers the feed no longer shows."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline.erasure import Erasure, ErasureLog
from pipeline.settings import Settings
from pipeline.stream.compacted import CompactedView

log = logging.getLogger(__name__)


class ErasuresView(CompactedView):
    """Erasures by id; `listeners` are told of every erasure record as it is read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.erasures_topic)
        self.log = ErasureLog()
        self.listeners: list[Callable[[Erasure], None]] = []

    def on_record(self, key: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            erasure = Erasure.from_bytes(value)
        except ValueError as exc:
            log.error("unreadable record %s in %s: %s", key, self.topic, exc)
            return
        self.log.apply(erasure)
        for listener in self.listeners:
            listener(erasure)
