"""The `lifecycle` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import click

from pipeline.logs import setup_logging
from pipeline.settings import Settings, SettingsError, load_settings

LEVELS = ["debug", "info", "warning", "error", "critical"]


@click.group()
def main() -> None:
    """Real-time user lifecycle scoring."""


@main.command()
@click.option("--no-demo", is_flag=True, help="Start the pipeline without the demo traffic.")
def up(no_demo: bool) -> None:
    """Run broker (embedded unless KAFKA_BOOTSTRAP is set), worker, API and demo traffic."""
    from pipeline.supervisor import run_up

    with contextlib.suppress(SettingsError):  # `run_up` says what is wrong with them
        setup_logging(load_settings())
    sys.exit(run_up(demo=not no_demo))


@main.command()
@click.option(
    "--loglevel",
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Least level logged [default: LOG_LEVEL, INFO].",
)
def worker(loglevel: str | None) -> None:
    """Run the Faust scoring worker."""
    from pipeline.domain.triggers import RulesError
    from pipeline.worker import run_worker

    try:
        run_worker(_settings(loglevel))
    except RulesError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def rules() -> None:
    """Trigger rules."""


@rules.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def rules_check(path: Path | None) -> None:
    """Check a rules file (default: TRIGGERS_FILE, else the shipped rules) and list its rules."""
    from pipeline.domain.triggers import RulesError, format_duration, load_rules

    try:
        rule_set = load_rules(path or _settings().triggers_file)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from exc
    for rule in rule_set.rules:
        cooldown = format_duration(rule.cooldown_ms)
        click.echo(f"{rule.name:<24} {rule.subject:<5} cooldown {cooldown:>5}  {rule.action}")
    click.echo(f"{len(rule_set.rules)} rules OK in {rule_set.source}")


@main.command()
def api() -> None:
    """Run the HTTP API."""
    import uvicorn

    from api.main import create_api
    from pipeline.domain.triggers import RulesError

    settings = _settings()
    try:
        app = create_api(settings)
    except (SettingsError, RulesError) as exc:
        raise click.ClickException(str(exc)) from exc
    # uvicorn shuts down gracefully, then re-raises the signal to the handler it found: make
    # that handler a clean exit, so a normal stop is not reported as a crash.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    # Logging is ours (`pipeline.logs`): uvicorn configures none, and its access log, which
    # writes paths with user ids, gives way to `api.access_log`.
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )


@main.command()
def topics() -> None:
    """Create the product's topics if they are missing."""
    from pipeline.topics import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@main.command()
@click.option("--users", type=int, help="Number of simulated users [DEMO_USERS, 2000].")
@click.option("--days", type=int, help="Simulated days before now [DEMO_DAYS, 120].")
@click.option("--seed", default=7, show_default=True)
@click.option("--until-now", is_flag=True, help="Stop once the history is loaded.")
def demo(users: int | None, days: int | None, seed: int, until_now: bool) -> None:
    """Produce realistic demo traffic: the history as a backfill, then live in the present."""
    from pipeline.demo import DemoConfig, run_demo

    settings = _settings()
    config = DemoConfig(
        users=users or settings.demo_users,
        days=days or settings.demo_days,
        seed=seed,
    )
    run_demo(settings, config, follow=not until_now)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", required=True, help="Input topic to send to, e.g. order-events.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Send at most this many events per second.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    help="File format [default: from the extension, .jsonl/.ndjson or .csv].",
)
def produce(file: Path, topic: str, rate: float | None, fmt: str | None) -> None:
    """Validate a JSONL or CSV FILE of events and send the valid ones, keyed by user_id.

    Exits 0 when every record was sent, 1 when some were rejected (the valid ones are still
    sent), 2 on usage errors.
    """
    from pipeline.produce import run_produce

    sys.exit(run_produce(_settings(), file, topic, fmt, rate))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    help="File format [default: from the extension, .jsonl/.ndjson or .csv].",
)
@click.option(
    "--id",
    "backfill_id",
    help="Backfill id carried in the records' headers [default: a new random one].",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Send at most this many events per second [default: full speed].",
)
def backfill(file: Path, fmt: str | None, backfill_id: str | None, rate: float | None) -> None:
    """Load history: events of all four kinds from a JSONL or CSV FILE, each to its topic.

    Validates every record as `produce` does, sends the valid ones in event-time order keyed
    by user_id with the header `lifecycle-backfill: ID`, then an end marker (header
    `lifecycle-backfill-end: ID`, no key, empty value) on every partition of the four input
    topics. Exits 0 when every record was sent, 1 when some were rejected (the valid ones are
    still sent), 2 on usage or connection errors.
    """
    from pipeline.backfill import check_backfill_id, run_backfill

    if backfill_id is not None:
        check_backfill_id(backfill_id)
    sys.exit(run_backfill(_settings(), file, fmt, backfill_id, rate))


@main.group()
def schema() -> None:
    """Published JSON Schemas of the event contracts."""


@schema.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schema_export(directory: Path) -> None:
    """Write one JSON Schema per input topic, and the score document's, to DIRECTORY."""
    from schemas.export import write_schemas

    for path in write_schemas(directory):
        click.echo(f"wrote {path}")


def _settings(loglevel: str | None = None) -> Settings:
    """The settings, with this process's logging set up from them (LOG_LEVEL, unless
    `loglevel` says otherwise, and LOG_FORMAT)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    setup_logging(settings, loglevel)
    return settings


if __name__ == "__main__":
    main()
