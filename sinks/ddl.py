"""Table definitions, written for both chDB (ClickHouse 26) and a 18.16 server.

A user's sums (`monetary`) are Decimal(38, 2): every order is bounded by the contract, the
number of a user's orders is not, so a sum needs room no input can fill. 18.16 has no
DateTime64, TTL or JSON functions, so times are DateTime('UTC') plus epoch
milliseconds where the millisecond matters, and `props` is kept as JSON text. Delivery is at
least once, so rows written again after a crash collapse by their sorting key (query with
FINAL, or count distinct ids, for exact figures before background merges).
"""

from __future__ import annotations

import hashlib

TABLES: dict[str, str] = {
    "events": """
CREATE TABLE IF NOT EXISTS {db}events (
    event_id String,
    topic String,
    type String,
    user_id String,
    ts DateTime('UTC'),
    ts_ms Int64,
    received_at DateTime('UTC'),
    room_id String,
    session_id String,
    group_id String,
    order_id String,
    amount Decimal(18, 4),
    currency String,
    amount_base Decimal(18, 2),
    channel String,
    campaign_id String,
    trigger_id String,
    text String,
    seconds Float64,
    props String
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(ts) ORDER BY (user_id, ts, event_id)
""",
    "stage_transitions": """
CREATE TABLE IF NOT EXISTS {db}stage_transitions (
    user_id String,
    from_stage String,
    to_stage String,
    at DateTime('UTC'),
    at_ms Int64,
    reactivation UInt8,
    recorded_at DateTime('UTC'),
    version UInt64,
    valid UInt8
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(at)
  ORDER BY (user_id, at_ms, to_stage)
""",
    "user_scores": """
CREATE TABLE IF NOT EXISTS {db}user_scores (
    user_id String,
    stage String,
    stage_since Nullable(DateTime('UTC')),
    order_count UInt32,
    refund_count UInt32,
    monetary Decimal(38, 2),
    currency String,
    interactions UInt64,
    reactivations UInt32,
    first_paid_at Nullable(DateTime('UTC')),
    last_paid_at Nullable(DateTime('UTC')),
    last_interaction_at Nullable(DateTime('UTC')),
    last_event_at Nullable(DateTime('UTC')),
    r UInt8,
    f UInt8,
    m UInt8,
    segment String,
    rfm_class String,
    churn_probability Nullable(Float64),
    p_alive Nullable(Float64),
    expected_purchases Nullable(Float64),
    expected_order_value Nullable(Float64),
    clv Nullable(Float64),
    atv Nullable(Float64),
    engagement Float64,
    sentiment String,
    version UInt64,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(version) ORDER BY user_id
""",
    "triggers": """
CREATE TABLE IF NOT EXISTS {db}triggers (
    id String,
    rule String,
    action String,
    subject_type String,
    subject_id String,
    reason String,
    at DateTime('UTC'),
    at_ms Int64,
    fired_at DateTime('UTC'),
    fired_ms Int64
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(at) ORDER BY (rule, subject_id, at_ms, id)
""",
    "trigger_outcomes": """
CREATE TABLE IF NOT EXISTS {db}trigger_outcomes (
    trigger_id String,
    rule String,
    outcome String,
    user_id String,
    event_id String,
    at DateTime('UTC'),
    at_ms Int64,
    amount_base Decimal(18, 2),
    recorded_at DateTime('UTC')
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(at)
  ORDER BY (rule, trigger_id, outcome, event_id)
""",
}


# Where each table names the person its rows are about (erasure deletes them): the column,
# and the rows' own condition (a trigger's subject is a user or a room).
PERSON_COLUMNS: dict[str, tuple[str, str | None]] = {
    "events": ("user_id", None),
    "stage_transitions": ("user_id", None),
    "user_scores": ("user_id", None),
    "triggers": ("subject_id", "subject_type = 'user'"),
    "trigger_outcomes": ("user_id", None),
}


def about_person(table: str, row: dict[str, object], user_ids: set[str]) -> bool:
    """Whether a row of `table` is about one of `user_ids`."""
    if table not in PERSON_COLUMNS:
        return False
    column, _ = PERSON_COLUMNS[table]
    if table == "triggers" and row.get("subject_type") != "user":
        return False
    return row.get(column) in user_ids


def person_condition(table: str, user_ids: list[str]) -> str:
    """The WHERE condition of `table`'s rows about `user_ids`. The ids appear only as MD5
    digests: ClickHouse keeps a mutation's text (its `mutation_*.txt` and `system.mutations`,
    the last 100 finished ones by default) and a server logs queries, so a plain id would stay
    on disk after its erasure."""
    column, extra = PERSON_COLUMNS[table]
    digests = ", ".join(f"unhex('{hashlib.md5(i.encode()).hexdigest()}')" for i in user_ids)
    condition = f"MD5({column}) IN ({digests})"
    return condition if extra is None else f"{extra} AND {condition}"


def create_statements(database: str | None) -> list[str]:
    prefix = f"{database}." if database else ""
    return [sql.format(db=prefix).strip() for sql in TABLES.values()]
