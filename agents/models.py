"""Population models: periodic and requested refits, checkpoints, and the models topic."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faust
import orjson
from mode import Service

from pipeline.app import Wiring
from pipeline.enrich import Enricher
from pipeline.models_doc import MODELS_KEY, models_document
from pipeline.refit import RefitResult, fit

log = logging.getLogger(__name__)


class ModelsService(Service):
    """Refits BG/NBD and Gamma-Gamma on a timer, checkpoints the models, publishes them."""

    def __init__(
        self, wiring: Wiring, enricher: Enricher, interval: float, path: Path, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.wiring = wiring
        self.enricher = enricher
        self.interval = interval
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refit")
        self._lock = asyncio.Lock()

    async def on_start(self) -> None:
        if self.path.exists():
            try:
                self.enricher.restore(self.path.read_bytes())
            except Exception:
                log.exception("models checkpoint %s unreadable; starting fresh", self.path)

    async def refit(self, request_id: str | None = None) -> RefitResult:
        """Fit in a thread on a copy of the buyers; the scoring loop never waits for SciPy."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            inputs = self.enricher.refit_inputs()  # a copy, taken on the scoring loop
            initial = self.enricher.models.bgnbd
            model = self.enricher.settings.btyd_model
            fitted = await loop.run_in_executor(self._executor, fit, inputs, initial, model)
            result = self.enricher.adopt(fitted)
            self.checkpoint()
            document = models_document(self.enricher, result, request_id)
            await self.wiring.models.send(key=MODELS_KEY, value=orjson.dumps(document))
            return result

    def checkpoint(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_bytes(self.enricher.checkpoint())
        partial.replace(self.path)

    @Service.task
    async def _refit_loop(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            if self.enricher.buyers and not self.should_stop:
                await self.refit()

    async def on_stop(self) -> None:
        async with self._lock:  # a refit under way finishes first
            self.checkpoint()
            self._executor.shutdown(wait=True)


def register(wiring: Wiring, service: ModelsService) -> None:
    """The commands agent: `{"command": "refit", "request_id": ...}` refits now."""

    @wiring.app.agent(wiring.commands, name="model-commands")
    async def commands(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                command = orjson.loads(raw)
            except orjson.JSONDecodeError:
                log.warning("ignored a command that is not JSON: %r", raw[:200])
                continue
            if isinstance(command, dict) and command.get("command") == "refit":
                await service.refit(str(command.get("request_id") or ""))
            else:
                log.warning("ignored an unknown command: %r", command)
