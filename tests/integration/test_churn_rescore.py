"""A churn model that becomes ready reaches the silent users' documents at once, without
waiting for their next event (found in use: 374 of 378 silent users kept no probability)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from schemas.events import LiveEvent, TouchEvent
from tests.integration.conftest import chdb_pipeline
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration


def test_silent_users_get_the_probability_of_a_model_that_became_ready(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("rescore")
    env = {"MODEL_REFIT_SECONDS": "3600", "CHURN_MIN_LABELS": "1", "CHURN_MIN_AUC": "0.5",
           "TRIGGER_MAX_AGE_SECONDS": "315360000"}  # fmt: skip
    with chdb_pipeline(broker, tmp, f"rs{uuid.uuid4().hex[:8]}", **env) as running:
        now = datetime.now(tz=UTC)
        days = [
            ("back", 200), ("back", 150),  # silent at -170, back at -150: not churned
            ("gone", 200),  # silent at -170, churned at -110
            ("quiet", 40),  # silent at -10: the one whose document waits for a model
        ]  # fmt: skip
        with EventProducer(running.settings.kafka_bootstrap,
                           topics=topics_of(running.settings)) as producer:  # fmt: skip
            for n, (user, ago) in enumerate(days):
                producer.send(LiveEvent(event_id=f"e{n}", type="like", user_id=user,
                                        ts=now - timedelta(days=ago, minutes=1), room_id="r1",
                                        session_id="s1"))  # fmt: skip
            # A message sent to each (not an interaction) brings their clocks to now.
            for user in ("back", "gone", "quiet"):
                producer.send(TouchEvent(event_id=f"t-{user}", type="touch_sent", user_id=user,
                                         ts=now - timedelta(minutes=1), campaign_id="c1",
                                         channel="wecom"))  # fmt: skip

        def quiet_silent() -> bool:
            response = running.get("/v1/users/quiet")
            return response.status_code == 200 and response.json()["stage"] == "silent"

        wait_until(quiet_silent, 30, "the quiet user to be silent")
        assert running.get("/v1/users/quiet").json()["churn_probability"] is None
        refit = httpx.post(running.base_url + "/v1/models/refit",
                           headers={"X-API-Key": "test-admin"}, timeout=30)  # fmt: skip
        models = refit.json()["detail"]["models"] if refit.status_code == 422 else refit.json()
        assert models["churn"]["ready"], models["churn"]
        # back: returned at -150, then silent again at -120 and churned at -60; gone: churned.
        assert (models["churn"]["labels"], models["churn"]["positives"]) == (3, 2)

        def scored() -> float | None:
            document = running.get("/v1/users/quiet").json()
            probability: float | None = document["churn_probability"]
            if probability is not None:
                assert document["model_versions"]["churn"] == models["versions"]["churn"]
            return probability

        probability = wait_until(scored, 30, "the silent user's document on the ready model")
        assert 0.0 <= probability <= 1.0
