"""`lifecycle up`: start the broker, worker, API and demo as child processes; stop them all."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx

from pipeline import local_prometheus
from pipeline.broker import BrokerError, port_open, start_tansu
from pipeline.domain.triggers import RulesError, load_rules
from pipeline.settings import DEV_KEYS, Settings, SettingsError, load_settings
from pipeline.topics import ensure_topics
from pipeline.up_banner import banner, status

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM if `lifecycle up` itself dies, so nothing is left running."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A named child process with its log file."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    def stop(self, grace_s: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        preexec_fn=_die_with_parent,
    )
    return Child(name, proc, log)


def _embedded_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["EMBEDDED"] = "true"
    env["KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env["CLICKHOUSE_URL"] = settings.clickhouse_url
    for variable, key in DEV_KEYS.items():
        env.setdefault(variable, f'["{key}"]')
    return env


def _clear_previous_run(settings: Settings) -> list[Path]:
    """The embedded broker starts empty, so state from an earlier run must not be mixed in."""
    cleared = []
    targets = [settings.data_dir / "worker"]
    if settings.clickhouse_url.startswith("chdb:"):
        targets.append(settings.chdb_path())
    for path in targets:
        if path.exists():
            shutil.rmtree(path)
            cleared.append(path)
    return cleared


class StopDuringStart(Exception):
    """Ctrl-C or SIGTERM came before everything had started."""


def _wait_for(
    ready: Callable[[], bool], what: str, deadline_s: float, children: list[Child],
    stopping: list[bool],
) -> None:  # fmt: skip
    """Wait until `ready()`; fails when a child exits, stops on Ctrl-C (StopDuringStart)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if stopping[0]:
            raise StopDuringStart
        for child in children:
            if child.proc.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode}; see {child.log}"
                )
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {deadline_s:.0f}s")


def _answers(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def run_up(demo: bool = True) -> int:
    """Run everything until Ctrl-C or until a child fails; returns the exit code."""
    try:
        settings = load_settings()
        load_rules(settings.triggers_file)
    except (SettingsError, RulesError) as exc:
        print(f"lifecycle up: {exc}", file=sys.stderr)
        return 2
    embedded = "KAFKA_BOOTSTRAP" not in os.environ
    if embedded:
        settings = settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{settings.embedded_broker_port}"}
        )
    logs = settings.data_dir / "logs"
    stopping = [False]
    started = [False]

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping[0] = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children: list[Child] = []
    code = 0
    try:
        for port, what in (
            (settings.api_port, "API"),
            (settings.worker_metrics_port, "worker metrics"),
            *(
                [(settings.clickhouse_http_port, "ClickHouse HTTP interface")]
                if settings.clickhouse_url.startswith("chdb:")
                else []
            ),
            *([(settings.prometheus_port, "Prometheus")] if settings.prometheus_port else []),
        ):
            if port_open(settings.api_host, port):
                raise RuntimeError(
                    f"port {port} for the {what} is in use: is `lifecycle up` already running?"
                )
        if embedded:
            for path in _clear_previous_run(settings):
                print(f"the embedded broker starts empty: cleared the previous run's {path}")
        logs.mkdir(parents=True, exist_ok=True)
        for log in logs.glob("*.log"):  # this run's logs start empty; the last run's stay
            log.replace(log.with_suffix(".log.1"))
        env = _embedded_env(settings) if embedded else dict(os.environ)
        if embedded:
            proc = start_tansu(
                "127.0.0.1",
                settings.embedded_broker_port,
                logs / "broker.log",
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            children.append(Child("broker", proc, logs / "broker.log"))
        created = asyncio.run(ensure_topics(settings))
        if created:
            print(f"created topics: {', '.join(created)}")
        children.append(_spawn("worker", ["worker"], env, logs))
        host = settings.api_host
        _wait_for(lambda: port_open(host, settings.worker_metrics_port), "the worker", 60.0,
                  children, stopping)  # fmt: skip
        children.append(_spawn("api", ["api"], env, logs))
        # Up, not ready: against a cluster with a backlog the workers catch up for minutes;
        # the status line says why /readyz is not ready meanwhile.
        _wait_for(_answers(f"http://{host}:{settings.api_port}/healthz"), "the API", 60.0,
                  children, stopping)  # fmt: skip
        if settings.prometheus_port:
            proc = local_prometheus.start(
                settings, settings.data_dir / "prometheus", logs / "prometheus.log",
                _die_with_parent,
            )  # fmt: skip
            children.append(Child("prometheus", proc, logs / "prometheus.log"))
            ready = _answers(f"http://{host}:{settings.prometheus_port}/-/ready")
            _wait_for(ready, "Prometheus", 60.0, children, stopping)
        if demo:
            children.append(_spawn("demo", ["demo"], env, logs))
        print(banner(settings, embedded, demo, logs), flush=True)
        last = time.monotonic()
        started[0] = True
        while not stopping[0]:
            for child in children:
                if child.proc.poll() is not None:
                    raise RuntimeError(
                        f"{child.name} exited with {child.proc.returncode}; see {child.log}"
                    )
            if time.monotonic() - last >= 15:
                print(status(settings), flush=True)
                last = time.monotonic()
            time.sleep(0.2)
    except StopDuringStart:
        print("lifecycle up: stopped while starting", flush=True)
        started[0] = True  # the last line below says so: nothing is left running
    except (RuntimeError, BrokerError, OSError) as exc:  # PrometheusMissing among them
        print(f"lifecycle up: {exc}", file=sys.stderr)
        code = 1
    finally:
        if children:
            print("stopping: " + ", ".join(c.name for c in reversed(children)), flush=True)
        for child in reversed(children):
            child.stop()
        if children or started[0]:
            print("stopped; nothing left running.")
    return code
