"""The `lifecycle` command."""

from __future__ import annotations

import asyncio
import sys

import click

from pipeline.settings import SettingsError, load_settings


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
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning")


@main.command()
def topics() -> None:
    """Create the product's topics if they are missing."""
    from pipeline.topics import ensure_topics

    created = asyncio.run(ensure_topics(_settings()))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@main.command()
@click.option("--users", default=2000, show_default=True, help="Number of simulated users.")
@click.option("--days", default=120, show_default=True, help="Simulated days before now.")
@click.option("--day-seconds", default=5.0, show_default=True, help="Real seconds per simulated day.")
@click.option("--seed", default=7, show_default=True)
@click.option("--until-now", is_flag=True, help="Stop when the simulation reaches the present.")
def demo(users: int, days: int, day_seconds: float, seed: int, until_now: bool) -> None:
    """Produce realistic demo traffic: users moving through live rooms, chats and orders."""
    from pipeline.demo import DemoConfig, run_demo

    config = DemoConfig(users=users, days=days, day_seconds=day_seconds, seed=seed)
    run_demo(_settings(), config, follow=not until_now)


def _settings():  # type: ignore[no-untyped-def]
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
