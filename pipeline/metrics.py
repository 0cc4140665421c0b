"""The worker's Prometheus metrics, declared in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge


def metric_sum(exposition: str, name: str) -> float:
    """Sum of the samples of a metric in Prometheus text exposition (for tests and the bench)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


EVENTS_IN = Counter("lifecycle_events_in_total", "Messages read from input topics", ["topic"])
EVENTS_SCORED = Counter("lifecycle_events_scored_total", "Events applied to user state", ["topic"])
DUPLICATES = Counter(
    "lifecycle_duplicates_total", "Events dropped because their event_id was seen", ["topic"]
)
DUPLICATE_ORDERS = Counter(
    "lifecycle_duplicate_orders_total",
    "Payments of an order already paid, under a new event id (dropped; also in duplicates)",
    ["topic"],
)
SINK_REJECTED_ROWS = Counter(
    "lifecycle_sink_rejected_rows_total",
    "Rows ClickHouse refused, sent to dead-letters as sink_rejected (their events were scored, "
    "so they are not in lifecycle_dead_letters_total)",
    ["table"],
)
DEAD_LETTERS = Counter(
    "lifecycle_dead_letters_total", "Messages rejected to dead-letters", ["topic", "reason"]
)
TRANSITIONS = Counter(
    "lifecycle_stage_transitions_total", "Stage changes", ["from_stage", "to_stage"]
)
CORRECTIONS = Counter(
    "lifecycle_stage_corrections_total",
    "Stage changes retracted because a late event changed the history from their time on",
)
HISTORY_GAPS = Counter(
    "lifecycle_history_gaps_total",
    "Events too late for the kept interaction times to derive the history again (counts exact)",
)
REACTIVATIONS = Counter("lifecycle_reactivations_total", "Returns from silent or churned")
EVENTS_COMMITTED = Counter(
    "lifecycle_events_committed_total",
    "Input messages whose effects are durable (state, rows, documents) and offsets committed",
)
SINK_ROWS = Counter("lifecycle_sink_rows_total", "Rows written to ClickHouse", ["table"])
SINK_FAILURES = Counter("lifecycle_sink_failures_total", "Failed ClickHouse flushes")
SINK_PENDING = Gauge("lifecycle_sink_pending_rows", "Rows waiting for the next ClickHouse flush")
ASSIGNED_PARTITIONS = Gauge(
    "lifecycle_worker_assigned_partitions", "Input topic-partitions this worker consumes now"
)
EVENT_CLOCK = Gauge("lifecycle_event_clock_seconds", "Latest event time applied (epoch seconds)")
CHECKPOINTS = Counter(
    "lifecycle_checkpoints_total", "State, rows and offsets made durable together"
)
TRIGGERS = Counter("lifecycle_triggers_total", "Triggers fired", ["rule"])
TRIGGER_OUTCOMES = Counter(
    "lifecycle_trigger_outcomes_total",
    "Touches answering a trigger, and paid orders inside its attribution window",
    ["rule", "outcome"],
)
ROOM_COMMENTS = Counter(
    "lifecycle_room_comments_total", "Live comments counted by the room rules", ["status"]
)
CHECKPOINT_AGE = Gauge(
    "lifecycle_checkpoint_age_seconds", "Seconds since the engine last completed a checkpoint",
    ["engine"],
)  # fmt: skip
CHECKPOINT_STALLED = Gauge(
    "lifecycle_checkpoint_stalled",
    "1 while the engine has had events to make durable and no completed checkpoint for "
    "CHECKPOINT_STALL_SECONDS",
    ["engine"],
)
ERASURES = Counter(
    "lifecycle_erasures_total", "Erasures of a person completed (state, rows, tombstones durable)"
)
ERASED_EVENTS = Counter(
    "lifecycle_erased_events_total",
    "Events dropped as read because their person was erased after they were recorded",
    ["topic"],
)
