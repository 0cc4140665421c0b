"""`lifecycle up`'s Prometheus: Debian's `prometheus` server as a child process on loopback,
scraping the API and the worker and evaluating the alert rules of
`deploy/prometheus/alerts.yml`, so the embedded default shows its alerts live at
`http://127.0.0.1:PROMETHEUS_PORT/alerts`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pipeline.settings import Settings

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
# Scrapes and rule evaluations this often: alerts show within seconds of their `for`.
INTERVAL = "5s"


class PrometheusMissing(RuntimeError):
    """Debian's `prometheus` is not installed (`make run` installs it)."""


def config(settings: Settings, rules: Path = RULES) -> str:
    """The configuration: the API and the worker on their ports, the alert rules."""
    host = settings.api_host
    return (
        "# Written by `lifecycle up` for its own Prometheus; deploy/prometheus/prometheus.yml\n"
        "# is the one to adapt for a deployment.\n"
        f"global:\n  scrape_interval: {INTERVAL}\n  evaluation_interval: {INTERVAL}\n"
        f"rule_files:\n  - {rules}\n"
        "scrape_configs:\n"
        "  - job_name: lifecycle-api\n"
        f"    static_configs:\n      - targets: ['{host}:{settings.api_port}']\n"
        "  - job_name: lifecycle-worker\n"
        f"    static_configs:\n      - targets: ['{host}:{settings.worker_metrics_port}']\n"
    )


def start(
    settings: Settings, workdir: Path, log: Path, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    """Start the server on `PROMETHEUS_PORT` with its data under `workdir` (cleared: alerts
    of an earlier run are not this one's); raises PrometheusMissing without the binary."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusMissing(
            "Debian's prometheus is not installed: `make run` installs it "
            "(apt-get install prometheus), or set PROMETHEUS_PORT=0 to run without alerts"
        )
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    path = workdir / "prometheus.yml"
    path.write_text(config(settings))
    out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address={settings.api_host}:{settings.prometheus_port}",
            "--storage.tsdb.retention.time=2d",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
