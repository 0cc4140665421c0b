"""`lifecycle up`'s demo makes every part visible within minutes (`make soak`: it waits for the
first negative storm and the planted idle users): every stage present, every trigger rule
firing, live traffic in the present, the console's numbers moving."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.domain.triggers import load_rules
from tests.integration.parts import Proc, lifecycle, wait_until
from tests.integration.test_lifecycle_up import _stop, _up_env

pytestmark = [pytest.mark.integration, pytest.mark.soak]

DEV = {"X-API-Key": "dev"}


def rules_fired(api: str) -> Counter[str]:
    fired: Counter[str] = Counter()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{api}/v1/triggers", params=params, headers=DEV, timeout=10).json()
        fired.update(item["rule"] for item in page["items"])
        if not page["items"]:
            return fired
        cursor = page["cursor"]


@pytest.mark.timeout(1500)
def test_the_demo_shows_every_stage_and_fires_every_rule(tmp_path: Path) -> None:
    env = _up_env(tmp_path)
    env.update({"DEMO_USERS": "2000", "DEMO_DAYS": "120", "MODEL_REFIT_SECONDS": "30"})
    api = f"http://127.0.0.1:{env['API_PORT']}"
    up = Proc("up", lifecycle("up"), env, tmp_path / "up.log", cwd=tmp_path)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in up.log.read_text(), 180, "the banner")
        every_rule = {rule.name for rule in load_rules().rules}

        def all_fired() -> bool:
            assert up.proc.poll() is None, up.log.read_text()[-2000:]
            return set(rules_fired(api)) >= every_rule

        # churn_risk waits for the churn model to be ready: about 8 minutes of labels.
        wait_until(all_fired, 1200, "every trigger rule to fire", step=5)
        stages = httpx.get(f"{api}/v1/segments", headers=DEV, timeout=10).json()["by_stage"]
        for stage in ("potential", "new", "active", "silent", "churned"):
            assert stages[stage] > 0, stages
        # Live traffic in the present: events of the last minutes in ClickHouse.
        clickhouse = f"http://127.0.0.1:{env['CLICKHOUSE_HTTP_PORT']}"
        recent = httpx.get(
            clickhouse,
            params={"query": "SELECT count() FROM events WHERE ts > now() - INTERVAL 2 MINUTE"},
        )
        assert int(recent.text) > 60  # about two a second
    finally:
        _stop(up)
