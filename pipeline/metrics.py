"""Every Prometheus metric of the product, declared in one place, with explicit buckets.

Two registries, one per process kind: `WORKER` (served on the worker's port,
`WORKER_METRICS_PORT`) and `API` (the API's `/metrics`). docs/metrics.md says what each is
for; the alert rules (`deploy/prometheus/alerts.yml`) and dashboards use only names declared
here (a test checks). Units are in the names (`_seconds`, `_bytes`, `_total`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.gc_collector import GCCollector

WORKER = CollectorRegistry()
API = CollectorRegistry()
for _registry in (WORKER, API):  # resident memory, CPU, open files; Python's GC
    ProcessCollector(registry=_registry)
    PlatformCollector(registry=_registry)
    GCCollector(registry=_registry)

# Seconds from an event to its effect: live scoring answers in tens of milliseconds; late
# and catching-up events take seconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 3600.0)  # fmt: skip
# A checkpoint: tens of milliseconds live, seconds with a large backlog or a slow store.
CHECKPOINT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# API requests: point reads from memory sit in the first few buckets.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def metric_sum(exposition: str, name: str) -> float:
    """Sum of the samples of a metric in Prometheus text exposition (for tests and the bench)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe(a)` for each of `amounts`, in one pass: a bisect per amount, then one
    increment per bucket and one of the sum (a tenth of the cost per event; a test checks it
    equals observing each)."""
    if not amounts:
        return
    bounds = histogram._upper_bounds  # ends with +Inf
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1
    histogram._sum.inc(sum(amounts))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def initialise_worker(rules: Iterable[str], topics: Iterable[str], reasons: Iterable[str]) -> None:
    """Every trigger rule's and every input topic's counters at 0 from the start: a labelled
    series that appears only with its first increment loses that burst to `increase()` and
    `rate()` (the alert on a rule firing for most users would miss its first hour)."""
    for rule in rules:
        TRIGGERS.labels(rule)
    for topic in topics:
        for counter in (EVENTS_IN, EVENTS_SCORED, DUPLICATES, ERASED_EVENTS):
            counter.labels(topic)
        for reason in reasons:
            DEAD_LETTERS.labels(topic, reason)


def _worker_counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, doc, labels, registry=WORKER)


def _worker_gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, doc, labels, registry=WORKER)


# -- the worker: input ------------------------------------------------------------------------

EVENTS_IN = _worker_counter("lifecycle_events_in_total", "Messages read from input topics",
                            ("topic",))  # fmt: skip
EVENTS_SCORED = _worker_counter(
    "lifecycle_events_scored_total", "Events applied to user state", ("topic",)
)
DUPLICATES = _worker_counter(
    "lifecycle_duplicates_total", "Events dropped because their event_id was seen", ("topic",)
)
DUPLICATE_ORDERS = _worker_counter(
    "lifecycle_duplicate_orders_total",
    "Payments of an order already paid, under a new event id (dropped; also in duplicates)",
    ("topic",),
)
HELD_REFUNDS = _worker_gauge(
    "lifecycle_held_refunds",
    "Refunds held until their order's payment comes (counted as neither scored nor dead "
    "letters yet)",
)
DEAD_LETTERS = _worker_counter(
    "lifecycle_dead_letters_total", "Messages rejected to dead-letters", ("topic", "reason")
)
ERASED_EVENTS = _worker_counter(
    "lifecycle_erased_events_total",
    "Events dropped because their person was erased: read after the erasure, or refunds "
    "held for a payment when it came",
    ("topic",),
)
EVENTS_COMMITTED = _worker_counter(
    "lifecycle_events_committed_total",
    "Input messages whose effects are durable (state, rows, documents) and offsets committed",
)
CONSUMER_LAG = _worker_gauge(
    "lifecycle_consumer_lag",
    "Records of an assigned input partition not read yet (high watermark - next offset)",
    ("engine", "topic", "partition"),
)
CONSUMER_LAG_SECONDS = _worker_gauge(
    "lifecycle_consumer_lag_seconds",
    "How far reading is behind: seconds since the last record read was written, while "
    "records wait (0 when none does)",
    ("engine", "topic", "partition"),
)
CONSUMER_COMMITTED = _worker_gauge(
    "lifecycle_consumer_committed_offset",
    "Next offset committed by the engine's consumer group (moves with each checkpoint)",
    ("engine", "topic", "partition"),
)
ASSIGNED_PARTITIONS = _worker_gauge(
    "lifecycle_worker_assigned_partitions", "Input topic-partitions this worker consumes now"
)
RESTORING = _worker_gauge(
    "lifecycle_restoring",
    "1 while the engine rebuilds assigned partitions' state from local state and changelog",
    ("engine",),
)
EVENT_CLOCK = _worker_gauge(
    "lifecycle_event_clock_seconds", "Latest event time applied (epoch seconds)"
)

# -- the worker: outputs and latency ----------------------------------------------------------

EVENT_TO_SCORE = Histogram(
    "lifecycle_event_to_score_seconds",
    "Live events (not a backfill's): event time to the user's score document published",
    buckets=LATENCY_BUCKETS,
    registry=WORKER,
)
INGEST_TO_SCORE = Histogram(
    "lifecycle_ingest_to_score_seconds",
    "Live events: written to Kafka (record timestamp) to the user's score document published",
    buckets=LATENCY_BUCKETS,
    registry=WORKER,
)
TRANSITIONS = _worker_counter(
    "lifecycle_stage_transitions_total", "Stage changes", ("from_stage", "to_stage")
)
CORRECTIONS = _worker_counter(
    "lifecycle_stage_corrections_total",
    "Stage changes retracted because a late event changed the history from their time on",
)
HISTORY_GAPS = _worker_counter(
    "lifecycle_history_gaps_total",
    "Events too late for the kept interaction times to derive the history again (counts exact)",
)
REACTIVATIONS = _worker_counter("lifecycle_reactivations_total", "Returns from silent or churned")
TRIGGERS = _worker_counter("lifecycle_triggers_total", "Triggers fired", ("rule",))
TRIGGER_OUTCOMES = _worker_counter(
    "lifecycle_trigger_outcomes_total",
    "Touches answering a trigger, and paid orders inside its attribution window",
    ("rule", "outcome"),
)
ROOM_COMMENTS = _worker_counter(
    "lifecycle_room_comments_total", "Live comments counted by the room rules", ("status",)
)
ERASURES = _worker_counter(
    "lifecycle_erasures_total", "Erasures of a person completed (state, rows, tombstones durable)"
)

# -- the worker: checkpoints, state and the sink ----------------------------------------------

CHECKPOINTS = _worker_counter(
    "lifecycle_checkpoints_total", "State, rows and offsets made durable together"
)
CHECKPOINT_SECONDS = Histogram(
    "lifecycle_checkpoint_duration_seconds",
    "A checkpoint from its snapshot to its offsets committed",
    ("engine",),
    buckets=CHECKPOINT_BUCKETS,
    registry=WORKER,
)
CHECKPOINT_AGE = _worker_gauge(
    "lifecycle_checkpoint_age_seconds", "Seconds since the engine last completed a checkpoint",
    ("engine",),
)  # fmt: skip
CHECKPOINT_STALLED = _worker_gauge(
    "lifecycle_checkpoint_stalled",
    "1 while the engine has had events to make durable and no completed checkpoint for "
    "CHECKPOINT_STALL_SECONDS",
    ("engine",),
)
STATE_USERS = _worker_gauge("lifecycle_state_users", "Users held in this worker's state")
STATE_BYTES = _worker_gauge(
    "lifecycle_state_bytes",
    "Estimated encoded size of the users held: users x the mean changelog record size",
)
SINK_ROWS = _worker_counter("lifecycle_sink_rows_total", "Rows written to ClickHouse", ("table",))
SINK_BATCHES = _worker_counter(
    "lifecycle_sink_batches_total", "Insert batches ClickHouse took", ("table",)
)
SINK_FAILURES = _worker_counter(
    "lifecycle_sink_failures_total", "Failed ClickHouse flushes (the store refused or was out)"
)
SINK_RETRIES = _worker_counter(
    "lifecycle_sink_retries_total", "Flushes tried again after a failed one (the rows kept)"
)
SINK_REJECTED_ROWS = _worker_counter(
    "lifecycle_sink_rejected_rows_total",
    "Rows ClickHouse refused, sent to dead-letters as sink_rejected (their events were scored, "
    "so they are not in lifecycle_dead_letters_total)",
    ("table",),
)
SINK_PENDING = _worker_gauge(
    "lifecycle_sink_pending_rows", "Rows waiting for the next ClickHouse flush"
)

# -- the worker: population models ------------------------------------------------------------

MODEL_READY = _worker_gauge(
    "lifecycle_model_ready",
    "1 when the model of the published models scores (churn: enough labels and AUC at its "
    "floor; btyd: fitted parameters; rfm: a population scale), else 0",
    ("model",),
)
MODEL_QUALITY = _worker_gauge(
    "lifecycle_model_quality",
    "The published model's quality: churn roc_auc, brier, calibration_error, log_loss",
    ("model", "measure"),
)
MODEL_QUALITY_FLOOR = _worker_gauge(
    "lifecycle_model_quality_floor",
    "The floor a quality measure must reach for the model to act (churn roc_auc: CHURN_MIN_AUC)",
    ("model", "measure"),
)
MODEL_PUBLISHED = _worker_gauge(
    "lifecycle_model_published_timestamp_seconds",
    "When the models in use were published by the leader's refit (epoch seconds)",
)
MODEL_REFIT_AGE = _worker_gauge(
    "lifecycle_model_refit_age_seconds",
    "Seconds since the models in use were published (0 before the first publication)",
)
MODEL_REFIT_INTERVAL = _worker_gauge(
    "lifecycle_model_refit_interval_seconds", "MODEL_REFIT_SECONDS: how often the leader refits"
)
MODEL_REFITS_KEPT = _worker_counter(
    "lifecycle_model_refits_kept_previous_total",
    "Refits whose purchase fit the data could not support (the previous parameters stay)",
)

# -- the API -----------------------------------------------------------------------------------

REQUEST_SECONDS = Histogram(
    "lifecycle_api_request_seconds",
    "API request latency by route",
    ("route", "method", "status"),
    buckets=REQUEST_BUCKETS,
    registry=API,
)
REQUESTS = Counter(
    "lifecycle_api_requests_total", "API requests by route and status",
    ("route", "method", "status"), registry=API,
)  # fmt: skip
VIEW_USERS = Gauge("lifecycle_api_view_users", "Users in the API's scores view", registry=API)
API_READY = Gauge("lifecycle_api_ready", "1 when /readyz answers ready, else 0", registry=API)
STALLED_WORKERS = Gauge(
    "lifecycle_api_stalled_workers",
    "Workers that own partitions and are stalled (checkpoints not completing) or silent for "
    "CHECKPOINT_STALL_SECONDS (the answer's stalled_workers)",
    registry=API,
)
WORKERS_NOT_READY = Gauge(
    "lifecycle_api_workers_not_ready",
    "Workers holding readiness back (the answer's workers_not_ready): stalled, silent while the "
    "latest owner of a partition, restoring, catching up since assignment, or behind",
    registry=API,
)
INGESTED = Counter(
    "lifecycle_api_ingested_events_total",
    "Events sent over HTTP (POST /v1/events): accepted, or rejected by reason",
    ("outcome", "reason"),
    registry=API,
)
