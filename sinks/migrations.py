"""Versioned schema migrations, applied in order when a process opens the store.

Each migration is a version, a description and statements that are idempotent (`IF NOT
EXISTS`): a start that stopped half way through one applies it again whole. The versions
applied are rows of `schema_migrations`; two processes starting together may both apply a
migration, harmlessly, and both record it. Every statement runs on chDB (ClickHouse 26) and on
an 18.16 server. Raw-event retention is not a migration but a setting, applied at every start
where the store has TTL (not 18.16: there the events are kept and the start says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sinks.ddl import TABLES

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS {db}schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime('UTC')
) ENGINE = MergeTree() ORDER BY version
"""


@dataclass(frozen=True)
class AddColumn:
    """`ALTER TABLE ... ADD COLUMN`, skipped where the column exists (18.16 has no `ADD
    COLUMN IF NOT EXISTS`)."""

    table: str
    column: str
    definition: str  # type and default


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    # SQL with `{db}` for the database prefix (`name.` or nothing), or columns to add.
    steps: tuple[str | AddColumn, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, stage history, scores, triggers, trigger outcomes",
              tuple(TABLES.values())),
    Migration(2, "events.sentiment: the label of a comment or message",
              (AddColumn("events", "sentiment", "String DEFAULT ''"),)),
)  # fmt: skip

LATEST = MIGRATIONS[-1].version


def migrate(
    execute: Callable[[str], object],
    query: Callable[[str], list[dict[str, object]]],
    database: str | None,
) -> list[int]:
    """Apply the migrations not applied yet, in order; returns their versions."""
    prefix = f"{database}." if database else ""
    execute(MIGRATIONS_TABLE.format(db=prefix).strip())
    rows = query(f"SELECT DISTINCT version FROM {prefix}schema_migrations")
    done = {int(str(row["version"])) for row in rows}
    applied = []
    where = f"database = '{database}'" if database else "database = currentDatabase()"
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for step in migration.steps:
            if isinstance(step, str):
                execute(step.format(db=prefix).strip())
                continue
            found = query(
                f"SELECT count() AS n FROM system.columns WHERE {where} "
                f"AND table = '{step.table}' AND name = '{step.column}'"
            )
            if not int(str(found[0]["n"])):
                execute(f"ALTER TABLE {prefix}{step.table} ADD COLUMN {step.column} "
                        f"{step.definition}")  # fmt: skip
        execute(
            # INSERT ... SELECT: clickhouse-driver waits for data after an inline VALUES.
            f"INSERT INTO {prefix}schema_migrations (version, description, applied_at) "
            f"SELECT {migration.version}, '{migration.description}', now()"
        )
        log.info("ClickHouse schema migration %d applied: %s", migration.version,
                 migration.description)  # fmt: skip
        applied.append(migration.version)
    return applied


def has_ttl(version: str) -> bool:
    """Whether a ClickHouse of this version (`SELECT version()`) has table TTL (19.6+)."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    major, minor = ([*parts, 0, 0])[:2]
    return (major, minor) >= (19, 6)


def retention_statement(database: str | None, days: int) -> str:
    """The events table's TTL for `days` of raw events (0: kept forever)."""
    prefix = f"{database}." if database else ""
    if days <= 0:
        return f"ALTER TABLE {prefix}events REMOVE TTL"
    return f"ALTER TABLE {prefix}events MODIFY TTL ts + toIntervalDay({int(days)})"
