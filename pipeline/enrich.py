"""Population models next to per-user state: RFM population, churn labels, BTYD refits."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable

from pipeline.domain.churn import ChurnModel, label_for, on_silent
from pipeline.domain.document import Derived
from pipeline.domain.engagement import Engagement, add, interaction_amount, value_at, watch_amount
from pipeline.domain.facts import Fact
from pipeline.domain.history import Transition
from pipeline.domain.orders import ORDER_TYPES
from pipeline.domain.profile import (
    Models,
    features,
    purchase_outlook,
    rfm_score,
    rfm_values,
)
from pipeline.domain.rfm import RfmValues
from pipeline.domain.sentiment import TEXT_TYPES, classify
from pipeline.domain.stages import DAY_MS, Stage
from pipeline.domain.state import UserState
from pipeline.leader import buyer_row
from pipeline.refit import RefitResult, fit, inputs_of
from pipeline.settings import Settings

log = logging.getLogger(__name__)

MAX_CHURN_LABELS = 2  # per user: their latest


class Enricher:
    """Keeps the models one worker needs and derives each user's scores from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models = Models()
        self.half_life_ms = max(1, int(settings.engagement_half_life_days * DAY_MS))
        self.window_ms = int(settings.active_window_days * DAY_MS)
        self.holdout_ms = int(settings.btyd_holdout_days * DAY_MS)
        # Each buyer's values as counted in the population, so a move removes what was added.
        self.members: dict[str, RfmValues] = {}
        self.clock_ms = 0
        self._churn_ready_at, self._churn_ready = -1, False
        # False in a worker: its own churn model has seen its partitions' labels only, so
        # documents carry a churn probability only from a model the leader published.
        self.local_churn = True

    def track(self, user: UserState) -> None:
        """Count the user in the population models (again, harmlessly, if already counted).

        Called for every user of a partition when this worker starts reading it, and after
        every order (nothing else moves a user in it): the population follows the stored state
        wherever it comes from.
        """
        new = rfm_values(user)
        old = self.members.get(user.user_id)
        if new != old:
            self.models.population.update(old, new)
            if new is None:
                del self.members[user.user_id]
            else:
                self.members[user.user_id] = new
        if user.last_event_ms is not None:
            self.clock_ms = max(self.clock_ms, user.last_event_ms)

    def untrack(self, user_id: str) -> None:
        """The user's partition moved to another worker: count it here no longer."""
        old = self.members.pop(user_id, None)
        if old is not None:
            self.models.population.update(old, None)

    def on_event(self, user: UserState, fact: Fact) -> str | None:
        """Engagement and sentiment of the event, and the user's move in the population;
        returns the sentiment label of the event's text when it was classified."""
        amount = (
            watch_amount(fact.seconds) if fact.type == "watch" else interaction_amount(fact.type)
        )
        if amount > 0:
            engagement = Engagement(user.engagement_value, user.engagement_at_ms)
            add(engagement, fact.ts_ms, amount, self.half_life_ms)
            user.engagement_value, user.engagement_at_ms = engagement.value, engagement.at_ms
        latest = user.sentiment_at_ms is None or fact.ts_ms >= user.sentiment_at_ms
        label = None
        if fact.text is not None and fact.type in TEXT_TYPES and latest:
            sentiment = classify(fact.text)
            label = sentiment.label
            user.sentiment_label, user.sentiment_score = (
                sentiment.label,
                round(sentiment.score, 4),
            )
            user.sentiment_at_ms = fact.ts_ms
        if fact.type in ORDER_TYPES:
            self.track(user)  # only an order moves a user in the RFM population
        elif user.last_event_ms is not None and user.last_event_ms > self.clock_ms:
            self.clock_ms = user.last_event_ms
        return label

    def on_transitions(self, user: UserState, transitions: list[Transition]) -> None:
        """Churn labels as the stage rules resolve them: silent, then churned or back.

        A retracted transition (a late event corrected the history) takes back what it gave:
        the snapshot of a silence that did not happen, the label it resolved."""
        for transition in transitions:
            if transition.retracted:
                if (
                    transition.to_stage == Stage.SILENT
                    and user.churn_snapshot_ms == transition.at_ms
                ):
                    user.churn_snapshot, user.churn_snapshot_ms = None, None
                elif transition.from_stage == Stage.SILENT:
                    user.churn_labels = [
                        label for label in user.churn_labels if label[0] != transition.at_ms
                    ]
                continue
            if transition.to_stage == Stage.SILENT:
                user.churn_snapshot = on_silent(
                    features(user, transition.at_ms, self.half_life_ms, self.window_ms)
                )
                user.churn_snapshot_ms = transition.at_ms
                continue
            label = label_for(transition.from_stage, transition.to_stage)
            if label is not None and user.churn_snapshot is not None:
                # Kept with the user for the global model (`population`); learnt here too
                # until this worker scores on a model the leader published.
                user.churn_labels.append([transition.at_ms, int(label), user.churn_snapshot])
                del user.churn_labels[:-MAX_CHURN_LABELS]
                if not self.models.published:
                    self.models.churn.learn(user.churn_snapshot, label)
                user.churn_snapshot, user.churn_snapshot_ms = None, None

    def derive(self, user: UserState, at_ms: int, horizon_days: float | None = None) -> Derived:
        horizon = self.settings.horizon_days if horizon_days is None else horizon_days
        churn = None
        # The model learns from users at the moment they turn silent (features then, churned
        # or back later): it scores silent users only, as P(churn | silent); for an active
        # user it would extrapolate (it put active buyers at 1.0). Before it is ready its
        # probability means nothing: none is shown.
        usable = self.local_churn or self.models.published
        if user.stage == Stage.SILENT and usable and self.churn_ready():
            # On the features at the moment of silence, as the model learnt them (scored on
            # later features it extrapolated: the longer a user stayed silent, the lower).
            snapshot = user.churn_snapshot
            if snapshot is None:
                snapshot = features(user, at_ms, self.half_life_ms, self.window_ms)
            churn = self.models.churn.predict(snapshot)
        return Derived(
            at_ms=at_ms,
            horizon_days=horizon,
            rfm=rfm_score(self.models, user, at_ms, self.settings.rfm_min_buyers),
            churn_probability=churn,
            purchase=purchase_outlook(self.models, user, at_ms, horizon),
            engagement=value_at(
                Engagement(user.engagement_value, user.engagement_at_ms), at_ms, self.half_life_ms
            ),
            versions=self.versions(),
        )

    def models_changed(self) -> None:
        """The models in use were replaced (adopted from the leader's publication)."""
        self._churn_ready_at = -1

    def churn_not_ready(self) -> list[str]:
        """Why the churn model does not act yet (`CHURN_MIN_LABELS`, `CHURN_MIN_AUC`)."""
        settings = self.settings
        return self.models.churn.readiness(settings.churn_min_labels, settings.churn_min_auc)

    def churn_ready(self) -> bool:
        churn = self.models.churn
        if self._churn_ready_at != churn.labels:  # readiness changes with labels only
            self._churn_ready_at, self._churn_ready = churn.labels, not self.churn_not_ready()
        return self._churn_ready

    def versions(self) -> dict[str, str]:
        """The versions a document is scored on: the leader's publication's, or this
        process's own models (`-local-`: never the same label as a published one)."""
        models = self.models
        if models.scale is not None:
            rfm = f"rfm-{models.scale.version}"
        else:
            rfm = f"rfm-local-{models.population.version}"
        churn, btyd = models.churn.version, f"btyd-{models.btyd_version}"
        if not models.published:
            churn = churn.replace("churn-", "churn-local-", 1)
            btyd = f"btyd-local-{models.btyd_version}"
        return {"churn": churn, "btyd": btyd, "rfm": rfm}

    def refit(self, users: Iterable[UserState]) -> RefitResult:
        """Fit BG/NBD and Gamma-Gamma on these users' buyers now (a process scoring on its
        own models; workers fit through the model leader); keep the previous fit on
        failure."""
        rows = [row for user in users if (row := buyer_row(user, self.holdout_ms)) is not None]
        inputs = inputs_of(rows, self.clock_ms, self.holdout_ms)
        model, penalty = self.settings.btyd_model, self.settings.btyd_l2_penalty
        return self.adopt(fit(inputs, self.models.bgnbd, model, penalty))

    def adopt(self, result: RefitResult) -> RefitResult:
        """Use a fit's parameters (a failed fit changes nothing)."""
        if result.error is None and result.bgnbd is not None:
            self.models.bgnbd, self.models.gamma_gamma = result.bgnbd, result.gamma_gamma
            self.models.btyd_version += 1
        return result

    def checkpoint(self) -> bytes:
        models = self.models
        return pickle.dumps(
            {
                "churn": models.churn.to_bytes(),
                "bgnbd": models.bgnbd,
                "gamma_gamma": models.gamma_gamma,
                "btyd_version": models.btyd_version,
                "scale": models.scale,
                "published": models.published,
            }
        )

    def restore(self, data: bytes) -> None:
        saved = pickle.loads(data)  # written by this product only
        self.models.churn = ChurnModel.from_bytes(saved["churn"])
        self._churn_ready_at = -1
        self.models.bgnbd = saved["bgnbd"]
        self.models.gamma_gamma = saved["gamma_gamma"]
        self.models.btyd_version = saved["btyd_version"]
        self.models.scale = saved.get("scale")
        self.models.published = bool(saved.get("published"))
