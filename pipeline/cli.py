"""The `lifecycle` command."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from pipeline.settings import Settings, SettingsError, load_settings


@click.group()
def main() -> None:
    """Real-time user lifecycle scoring."""


@main.command()
@click.option("--no-demo", is_flag=True, help="Start the pipeline without the demo traffic.")
def up(no_demo: bool) -> None:
    """Run broker (embedded unless KAFKA_BOOTSTRAP is set), worker, API and demo traffic."""
    from pipeline.supervisor import run_up

    sys.exit(run_up(demo=not no_demo))


@main.command()
@click.option("--loglevel", default="warning", show_default=True)
def worker(loglevel: str) -> None:
    """Run the Faust scoring worker."""
    from pipeline.worker import run_worker

    run_worker(_settings(), loglevel)


@main.command()
def api() -> None:
    """Run the HTTP API."""
    import uvicorn

    from api.main import create_api

    settings = _settings()
    try:
        app = create_api(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    # uvicorn shuts down gracefully, then re-raises the signal to the handler it found: make
    # that handler a clean exit, so a normal stop is not reported as a crash.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning")


@main.command()
def topics() -> None:
    """Create the product's topics if they are missing."""
    from pipeline.topics import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@main.command()
@click.option("--users", type=int, help="Number of simulated users [DEMO_USERS, 2000].")
@click.option("--days", type=int, help="Simulated days before now [DEMO_DAYS, 120].")
@click.option(
    "--day-seconds", type=float, help="Real seconds per simulated day [DEMO_DAY_SECONDS, 5]."
)
@click.option("--seed", default=7, show_default=True)
@click.option("--until-now", is_flag=True, help="Stop when the simulation reaches the present.")
def demo(
    users: int | None, days: int | None, day_seconds: float | None, seed: int, until_now: bool
) -> None:
    """Produce realistic demo traffic: users moving through live rooms, chats and orders."""
    from pipeline.demo import DemoConfig, run_demo

    settings = _settings()
    config = DemoConfig(
        users=users or settings.demo_users,
        days=days or settings.demo_days,
        day_seconds=day_seconds or settings.demo_day_seconds,
        seed=seed,
    )
    run_demo(settings, config, follow=not until_now)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
