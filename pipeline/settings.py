"""One settings class: every address, name and threshold, read from the environment."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.limits import DEFAULT_EARLIEST_EVENT_TIME, STORE_EARLIEST
from schemas.validation import Validator

# Keys that `lifecycle up` hands out on the embedded default; refused anywhere else.
DEV_API_KEY = "dev"
DEV_ADMIN_KEY = "dev-admin"
DEV_PRODUCER_KEY = "dev-producer"
# The embedded default's keys, by the setting that holds each role's keys.
DEV_KEYS = {"API_KEYS": DEV_API_KEY, "ADMIN_API_KEYS": DEV_ADMIN_KEY,
            "PRODUCER_API_KEYS": DEV_PRODUCER_KEY}  # fmt: skip

DEFAULT_FX_TO_CNY: dict[str, float] = {
    "CNY": 1.0,
    "HKD": 0.91,
    "TWD": 0.22,
    "USD": 7.1,
    "EUR": 7.7,
    "GBP": 9.0,
    "JPY": 0.047,
    "KRW": 0.0052,
    "SGD": 5.3,
}


class SettingsError(ValueError):
    """The configuration cannot run: the message says which variable and why."""


# SPEC section 6: open rate > 60%, interactions > 3 per user per month, conversion > 10%,
# D1 retention > 25%, D7 > 15%, repurchase within 3 months > 20%.
KPI_TARGETS = {
    "open_rate": 0.6, "interaction_frequency": 3.0, "conversion": 0.1,
    "retention_d1": 0.25, "retention_d7": 0.15, "repurchase": 0.2,
}  # fmt: skip


class Settings(BaseSettings):
    """Configuration of every process (broker, worker, API, demo), from environment variables."""

    model_config = SettingsConfigDict(frozen=True, env_prefix="", extra="ignore")

    # Where things are.
    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_url: str = "chdb:///.lifecycle/chdb"
    data_dir: Path = Path(".lifecycle")
    embedded_broker_port: int = Field(
        default=9092,
        description="Port of the broker `lifecycle up` starts when KAFKA_BOOTSTRAP is unset.",
    )
    embedded: bool = Field(
        default=False,
        description="Set by `lifecycle up` when it runs its own broker and chDB; enables dev keys.",
    )

    # Topics (SPEC section 2).
    topic_live: str = "live-events"
    topic_chat: str = "chat-events"
    topic_order: str = "order-events"
    topic_touch: str = "touch-events"
    topic_scores: str = "user-scores"
    topic_triggers: str = "lifecycle-triggers"
    topic_dead_letters: str = "dead-letters"
    # Stage changes as they are derived, and their corrections (`valid` 0) after a late event.
    topic_stage_changes: str = "lifecycle-stage-changes"
    topic_models: str = "lifecycle-models"
    # Each partition's population summary (compacted, keyed by partition): what the model
    # leader fits the models of the whole population on.
    topic_population: str = "lifecycle-population"
    topic_commands: str = "lifecycle-commands"
    topic_partitions: int = Field(default=4, ge=1)
    # rocksdb:// keeps each partition's users on local disk (rocksdict) with the changelog
    # offset they include, so a restart reads only the changelog's tail; memory:// rebuilds
    # them from the whole changelog at start.
    table_store: Literal["rocksdb://", "memory://"] = Field(
        default="rocksdb://", description="User state store: rocksdb:// or memory://"
    )
    app_id: str = "lifecycle"
    # How often the worker checkpoints: state to the changelog, rows to ClickHouse, offsets.
    commit_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # The same while the worker catches up on a backlog: a user changed many times in it gets
    # one score document and one changelog record per checkpoint, so fewer checkpoints mean
    # less work per event; a crash replays at most this much more.
    catch_up_commit_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    # Most records one batch of the scoring loop takes from the broker.
    batch_max_records: int = Field(default=2000, ge=1)
    # How long a worker may go without a completed checkpoint while it has events to make
    # durable before it counts as stalled (logged, lifecycle_checkpoint_stalled, /readyz 503).
    checkpoint_stall_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    # Once caught up after assignment, a worker further behind its input than this holds
    # /readyz back (its scores are not current); the API reads it too.
    ready_max_lag_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: list[SecretStr] = Field(default_factory=list)
    admin_api_keys: list[SecretStr] = Field(default_factory=list)
    # Keys that may send events over HTTP (POST /v1/events) and nothing else; admin keys may
    # too.
    producer_api_keys: list[SecretStr] = Field(default_factory=list)
    # POST /v1/events: the largest body (bytes, answered 413), the most events in one batch
    # (413), and per key a sustained rate (events per second) with a burst of twice that
    # (answered 429 with Retry-After).
    ingest_max_bytes: int = Field(default=1_048_576, ge=1024)
    ingest_max_events: int = Field(default=1000, ge=1)
    ingest_events_per_second: float = Field(default=2000.0, gt=0, allow_inf_nan=False)
    worker_metrics_port: int = 9108
    # With the embedded store (chDB), the worker serves ClickHouse's HTTP interface here.
    clickhouse_http_port: int = 8123

    # Logs of every process (pipeline/logs.py): one line per record, to standard error.
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text` (time level logger: message) or `json` lines."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Least level logged; tracebacks only at DEBUG (text)."
    )
    # `lifecycle up` runs Debian's Prometheus here with the alert rules (0: not at all).
    prometheus_port: int = Field(default=9090, ge=0, le=65535)

    # Domain defaults (SPEC section 4), all configuration.
    active_window_days: float = 30.0
    active_min_interactions: int = 10
    new_window_days: float = 30.0
    silent_after_days: float = 30.0
    churned_after_days: float = 90.0
    engagement_half_life_days: float = Field(default=7.0, gt=0, allow_inf_nan=False)
    horizon_days: float = Field(default=90.0, gt=0, le=3650, allow_inf_nan=False)
    # The purchase model: the BG/NBD, or the modified BG/NBD in which one-time buyers can
    # drop out too (better where many buy once and never again).
    # "auto": the one whose predictions of the last `btyd_holdout_days` err least.
    btyd_model: Literal["bgnbd", "mbgnbd", "auto"] = "bgnbd"
    # Each refit also fits on the buyers' history up to this many days ago and compares
    # its predictions with the purchases made since (GET /v1/models, `refit.diagnostics.
    # holdout`); 0 turns the check off.
    btyd_holdout_days: float = Field(default=28.0, ge=0)
    # Regularisation of the BG/NBD fit, as the BTYD libraries' penalizer: adds this times the
    # sum of the squared log-parameters to the mean negative log-likelihood per customer, so
    # data that cannot tell dropout from a low rate gives a fit instead of a degenerate one.
    btyd_l2_penalty: float = Field(default=0.001, ge=0)
    # The purchase models are fitted on a uniform sample of at most this many buyers (a
    # bottom-k sample by a hash of the user id: the same whichever workers own them).
    btyd_sample_buyers: int = Field(default=20_000, ge=10)
    # The churn model learns the latest labels of the whole population, at most this many.
    churn_max_labels: int = Field(default=20_000, ge=10)
    # RFM scores need a population: below this many buyers documents carry none.
    rfm_min_buyers: int = Field(default=5, ge=1)
    # The churn model acts (documents carry its probability, rules on it fire) only once it
    # has seen this many labels of each class and ranks them at least this well.
    churn_min_labels: int = Field(default=30, ge=1)
    churn_min_auc: float = Field(default=0.7, ge=0.5, le=1.0)
    model_refit_seconds: float = Field(default=60.0, gt=0)
    refit_timeout_seconds: float = Field(default=60.0, gt=0)
    base_currency: str = "CNY"
    fx_rates: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FX_TO_CNY))

    # Demo traffic of `lifecycle up`.
    demo_users: int = Field(default=2000, ge=1)
    demo_days: int = Field(default=120, ge=1)

    # Validation and duplicates (SPEC section 3).
    max_message_bytes: int = Field(default=64 * 1024, ge=256)
    future_margin_seconds: float = Field(default=300.0, ge=0)
    dedup_horizon_days: float = Field(default=7.0, gt=0, allow_inf_nan=False)
    dedup_max_ids: int = Field(default=512, ge=1)
    dedup_min_ids: int = Field(default=256, ge=0)
    # Event times before this are `invalid_timestamp` (epoch seconds sent as milliseconds
    # land in 1970); not before 1970-01-02, what the stores hold.
    earliest_event_time: datetime = Field(
        default=DEFAULT_EARLIEST_EVENT_TIME,
        description="Earliest valid event time (RFC 3339); default 1990-01-01T00:00:00Z.",
    )
    # How late (behind its partition's watermark) an event may come and still derive its
    # user's stage history again exactly; later ones keep counts exact and are counted as
    # history gaps. A user keeps the interaction times this window needs.
    lateness_seconds: float = Field(default=3600.0, ge=0, allow_inf_nan=False)
    # Triggers act on the present: a fact (a stage change, an order, a score) older than this
    # on the wall clock fires nothing, so a backfill or a replay pushes nothing to users.
    trigger_max_age_seconds: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    # The per-user ledger of recent orders (a payment counted once, a refund capped at what
    # its order paid): orders paid within this many days of the user's latest event, at most
    # this many. A refund of an order outside it is `unknown_order`.
    order_ledger_days: float = Field(default=180.0, gt=0, allow_inf_nan=False)
    order_ledger_max_orders: int = Field(default=100, ge=1)

    # Trigger rules (SPEC section 5): a YAML file; the packaged defaults when unset.
    triggers_file: Path | None = Field(
        default=None, description="Rules file of the triggers; default: the shipped rules."
    )
    room_comment_lateness_seconds: float = Field(
        default=60.0, ge=0, description="How late a live comment may come and still count."
    )

    kpi_targets: dict[str, float] = Field(
        default_factory=lambda: dict(KPI_TARGETS),
        description="KPI targets (met when the value is above): SPEC section 6's by default.",
    )
    raw_event_retention_days: int = Field(
        default=400, ge=0,
        description="Days of raw events ClickHouse keeps (TTL; 0 keeps them forever); a "
        "server without TTL (18.16) keeps them all and the worker says so at start.",
    )  # fmt: skip

    # Sink batching.
    sink_flush_rows: int = Field(default=5000, ge=1)
    sink_flush_seconds: float = Field(default=0.5, gt=0)
    # Rows the sink holds while ClickHouse refuses or is out; past it the worker stops scoring
    # (its loop fails and restarts from the last checkpoint) rather than drop rows.
    sink_max_buffered_rows: int = Field(default=1_000_000, gt=0)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for entry in value.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"KAFKA_BOOTSTRAP entry {entry!r} needs host:port")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("chdb", "clickhouse", "memory"):
            raise ValueError(
                "CLICKHOUSE_URL must be chdb:///path, clickhouse://host:9000/db or memory://"
            )
        if parsed.scheme == "chdb" and (parsed.netloc or parsed.path.strip("/") == ""):
            raise ValueError("a chDB URL is chdb:///relative/dir or chdb:////absolute/dir")
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("earliest_event_time")
    @classmethod
    def _earliest_in_store_range(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("EARLIEST_EVENT_TIME needs a UTC offset, e.g. 1990-01-01T00:00:00Z")
        if value < STORE_EARLIEST:
            raise ValueError(f"EARLIEST_EVENT_TIME must be on or after {STORE_EARLIEST.date()}")
        return value

    @model_validator(mode="after")
    def _stall_beyond_checkpoints(self) -> Settings:
        longest = max(self.commit_interval_seconds, self.catch_up_commit_interval_seconds)
        if self.checkpoint_stall_seconds < 2 * longest:
            raise ValueError(
                f"CHECKPOINT_STALL_SECONDS ({self.checkpoint_stall_seconds:g}) must be at least "
                f"twice the longest checkpoint interval ({longest:g} s): a worker catching up "
                "would be taken for a stalled one"
            )
        return self

    @model_validator(mode="after")
    def _currencies(self) -> Settings:
        if self.base_currency not in self.fx_rates:
            raise ValueError(f"BASE_CURRENCY {self.base_currency} has no rate in FX_RATES")
        return self

    @cached_property
    def input_topics(self) -> tuple[str, str, str, str]:
        return (self.topic_live, self.topic_chat, self.topic_order, self.topic_touch)

    @cached_property
    def changelog_topic(self) -> str:
        """The compacted topic that holds every user's state, partitioned like the inputs."""
        return f"{self.app_id}-user-state-changelog"

    @cached_property
    def room_comments_topic(self) -> str:
        """Live comments re-keyed by room: each room's comments meet in one room engine."""
        return f"{self.app_id}-room-comments"

    @cached_property
    def room_changelog_topic(self) -> str:
        """The compacted topic that holds every room's window and firing marks."""
        return f"{self.app_id}-room-state-changelog"

    @cached_property
    def worker_status_topic(self) -> str:
        """The compacted topic each worker reports its partitions and checkpoints to."""
        return f"{self.app_id}-worker-status"

    @cached_property
    def erasures_topic(self) -> str:
        """The compacted topic of erasure requests and their completion, keyed by erasure id."""
        return f"{self.app_id}-erasures"

    @cached_property
    def output_topics(self) -> tuple[str, str, str]:
        return (self.topic_scores, self.topic_triggers, self.topic_dead_letters)

    def user_keys(self) -> set[str]:
        """API keys that may read; admin keys may read too."""
        return {k.get_secret_value() for k in self.api_keys} | self.admin_keys()

    def admin_keys(self) -> set[str]:
        return {k.get_secret_value() for k in self.admin_api_keys}

    def producer_keys(self) -> set[str]:
        """API keys that may send events; admin keys may too."""
        return {k.get_secret_value() for k in self.producer_api_keys} | self.admin_keys()

    def check_api_keys(self) -> None:
        """Refuse to serve without keys, or with the dev keys outside the embedded default."""
        keys = self.user_keys()
        if not keys:
            raise SettingsError("API_KEYS is empty: set at least one key (JSON list)")
        if not self.embedded and (keys | self.producer_keys()) & set(DEV_KEYS.values()):
            raise SettingsError(
                "the keys 'dev', 'dev-admin' and 'dev-producer' are for the embedded default "
                "only; set API_KEYS, ADMIN_API_KEYS and PRODUCER_API_KEYS to keys of your own"
            )

    def validator(self) -> Validator:
        """The event contract with these limits (size, currencies, earliest and future
        times), as the worker, the reference scorer and the producers' tools apply it."""
        return Validator(
            self.fx_rates,
            max_bytes=self.max_message_bytes,
            future_margin_ms=int(self.future_margin_seconds * 1000),
            earliest=self.earliest_event_time,
        )

    def chdb_path(self) -> Path:
        """Data directory of an embedded chDB URL (chdb:///rel/path or chdb:////abs/path)."""
        parsed = urlparse(self.clickhouse_url)
        if parsed.scheme != "chdb":
            raise SettingsError(f"CLICKHOUSE_URL {self.clickhouse_url} is not a chdb:// URL")
        # chdb:///rel/dir is relative to the working directory, chdb:////abs/dir absolute.
        return Path((parsed.netloc + parsed.path)[1:])


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's errors into one readable line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from exc
