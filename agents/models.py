"""Population models of the whole population: partition summaries, the leader's refits,
requested refits, adoption of what was published, and the models checkpoint.

Every worker, on a timer and on each refit command (every worker reads every command),
publishes a summary of each partition it owns. The worker that owns partition 0 is the
leader: it merges the latest summary of every partition (on a command, once every partition
has answered it or the wait is over), fits in a thread, and publishes the models; every
worker adopts what is published (`pipeline.leader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from agents.model_metrics import models_adopted, models_unpublished
from pipeline.app import Wiring
from pipeline.domain.population import Summary, merge
from pipeline.domain.stages import Stage
from pipeline.leader import (
    CHURN_MODEL_KEY,
    MODELS_KEY,
    adopt,
    fit_population,
    partition_summary,
)
from pipeline.scorer import Scorer
from pipeline.stream.compacted import CompactedView

log = logging.getLogger(__name__)

LEADER_PARTITION = 0


class ModelsService(Service):
    """Summaries, the leader's refits, and adoption of the published models."""

    def __init__(
        self,
        wiring: Wiring,
        scorer: Scorer,
        owned: Callable[[], list[int]],
        interval: float,
        path: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wiring = wiring
        self.scorer = scorer
        self.enricher = scorer.enricher
        self.settings = scorer.enricher.settings
        self.owned = owned
        self.interval = interval
        self.path = path
        self.population = CompactedView(self.settings, self.settings.topic_population)
        self.published = CompactedView(self.settings, self.settings.topic_models)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refit")
        self._lock = asyncio.Lock()
        self._adopted: bytes | None = None
        self._adopted_at = ""  # the publication time of the models in use
        self._churn_version: str | None = None  # of the churn model last published and used

    async def on_start(self) -> None:
        models_unpublished(self.settings)
        if self.path.exists():
            try:
                self.enricher.restore(self.path.read_bytes())
            except Exception:
                log.exception("models checkpoint %s unreadable; starting fresh", self.path)
        await self.population.start()
        await self.published.start()

    @property
    def leader(self) -> bool:
        return LEADER_PARTITION in self.owned()

    def summaries(self) -> dict[int, Summary]:
        """A fresh summary of each partition this worker owns."""
        store = self.scorer.store
        return {p: partition_summary(store.users_of(p), self.settings) for p in self.owned()}

    async def publish_summaries(self, request_id: str | None) -> dict[int, Summary]:
        fresh = self.summaries()
        for partition, summary in fresh.items():
            record = {"partition": partition, "request_id": request_id,
                      "summary": summary.to_dict()}  # fmt: skip
            await self.wiring.population.send(
                key=str(partition).encode(), value=orjson.dumps(record)
            )
        return fresh

    def _others(self) -> dict[int, dict[str, Any]]:
        out = {}
        for key, raw in list(self.population.documents.items()):
            with contextlib.suppress(ValueError, orjson.JSONDecodeError):
                out[int(key)] = orjson.loads(raw)
        return out

    async def _answered(self, request_id: str, own: set[int]) -> None:
        """Wait until every partition's summary answers `request_id`, or the wait is over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.refit_timeout_seconds / 2
        wanted = set(range(self.settings.topic_partitions)) - own
        while True:
            others = self._others()
            if all(others.get(p, {}).get("request_id") == request_id for p in wanted):
                return
            left = deadline - loop.time()
            if left <= 0:
                log.warning("refit %s: not every partition answered in time", request_id)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.population.changed.wait(), min(left, 0.5))

    async def refit(self, request_id: str | None = None) -> dict[str, Any] | None:
        """Publish this worker's summaries; the leader then fits on every partition's and
        publishes the models (returns the document; None on other workers)."""
        async with self._lock:
            fresh = await self.publish_summaries(request_id)
            if not self.leader:
                return None
            if request_id:
                await self._answered(request_id, set(fresh))
            parts = {p: Summary.from_dict(r["summary"]) for p, r in self._others().items()}
            parts.update(fresh)
            settings = self.settings
            merged = merge(
                (parts[p] for p in sorted(parts)),
                settings.btyd_sample_buyers,
                settings.churn_max_labels,
            )
            if request_id is None and not merged.buyers:
                return None  # nothing to fit yet: no publication until a refit is asked for
            loop = asyncio.get_running_loop()
            document, churn = await loop.run_in_executor(
                self._executor, fit_population, merged, settings, self.enricher.models,
                request_id,
            )  # fmt: skip
            document["population"]["partitions"] = len(parts)
            raw = orjson.dumps(document)
            await self.wiring.models.send(key=CHURN_MODEL_KEY, value=churn)
            await self.wiring.models.send(key=MODELS_KEY, value=raw)
            # The leader scores on its publication at once (the others when they read it).
            self._adopt(raw, churn)
            return document

    def adopt_published(self) -> None:
        """Score on the latest published models (once per publication)."""
        raw = self.published.get(MODELS_KEY.decode())
        if raw is None or raw == self._adopted:
            return
        self._adopt(raw, self.published.get(CHURN_MODEL_KEY.decode()))

    def _adopt(self, raw: bytes, churn: bytes | None) -> None:
        document = orjson.loads(raw)
        self._adopted = raw
        # Never back to an older publication (the view can still hold it when the leader
        # has just adopted its own newer one).
        published_at = str(document.get("published_at") or "")
        if published_at <= self._adopted_at:
            return
        adopt(self.enricher.models, document, churn)
        models_adopted(document)
        self.enricher.models_changed()
        self._adopted_at = published_at
        self.checkpoint()
        version = str(document.get("versions", {}).get("churn"))
        fresh, self._churn_version = version != self._churn_version, version
        if fresh and self.enricher.churn_ready():
            # A new churn model that acts: silent users' documents carry its probability
            # (and churn_risk can fire) without waiting for their next change.
            store = self.scorer.store
            self.scorer.rescore.update(
                user.user_id
                for partition in self.owned()
                for user in store.users_of(partition)
                if user.stage == Stage.SILENT
            )

    def checkpoint(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_bytes(self.enricher.checkpoint())
        partial.replace(self.path)

    @Service.task
    async def _adopt_loop(self) -> None:
        while not self.should_stop:
            changed = self.published.changed
            try:
                self.adopt_published()
            except Exception:
                log.exception("published models unreadable; the ones in use stay")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)

    @Service.task
    async def _refit_loop(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if self.owned() and not self.should_stop:
                await self.refit()

    @Service.task
    async def _commands(self) -> None:
        """Every worker reads every command (no consumer group), from the end at start."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        try:
            topic = self.settings.topic_commands
            partitions = None
            while not partitions:
                await consumer.topics()
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await asyncio.sleep(0.5)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        await self._command(record)
        finally:
            await consumer.stop()

    async def _command(self, record: Any) -> None:
        """Run the command in `record` (a ConsumerRecord); another one is logged by its
        position and skipped (its value only at DEBUG)."""
        at = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            command = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            log.warning("ignored the command at %s: not JSON", at)
            log.debug("the command at %s: %r", at, (record.value or b"")[:200])
            return
        if isinstance(command, dict) and command.get("command") == "refit":
            await self.refit(str(command.get("request_id") or ""))
        else:
            name = command.get("command") if isinstance(command, dict) else None
            log.warning("ignored the command at %s: unknown command %.40r", at, name)
            log.debug("the command at %s: %r", at, command)

    async def on_stop(self) -> None:
        async with self._lock:  # a refit under way finishes first
            self.checkpoint()
            self._executor.shutdown(wait=True)
        await self.population.stop()
        await self.published.stop()
