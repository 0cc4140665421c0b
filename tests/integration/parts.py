"""Start and stop the real parts the integration tests need: broker, ClickHouse, worker, API."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.broker import tansu_command
from pipeline.metrics import metric_sum

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.02) -> T:
    """Poll `check` until it returns something truthy, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the part is still coming up
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def port_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def metric_at(port: int, name: str) -> float:
    """Sum of a metric's samples on the /metrics of a local port."""
    return metric_sum(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, name)


class Proc:
    """A child process with its log, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, grace: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def start_broker(tmp: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc("broker", tansu_command("127.0.0.1", port), dict(os.environ), tmp / "broker.log")
    wait_until(lambda: port_listening(port), 10, "the broker to listen")
    return proc, f"127.0.0.1:{port}"


def clickhouse_server_binary() -> str:
    path = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
    if not Path(path).exists():
        raise RuntimeError(
            "clickhouse-server is not installed: `make test` installs Debian's package "
            "(apt-get install clickhouse-server); the integration tests need it"
        )
    return path


def start_clickhouse_server(tmp: Path, ports: tuple[int, int] | None = None) -> tuple[Proc, int]:
    """A server on its own data directory under `tmp` (kept across restarts), on `ports`
    (native, HTTP) or free ones; returns it and its native port."""
    data = tmp / "clickhouse"
    data.mkdir(parents=True, exist_ok=True)
    tcp, http = ports or (free_port(), free_port())
    args = [
        clickhouse_server_binary(),
        "--config-file=/etc/clickhouse-server/config.xml",
        "--",
        f"--path={data}/",
        f"--tcp_port={tcp}",
        f"--http_port={http}",
        # Each server of the tests on its own replication port (the default 9009 is shared).
        f"--interserver_http_port={free_port()}",
        "--listen_host=127.0.0.1",
        f"--logger.log={data}/server.log",
        f"--logger.errorlog={data}/error.log",
        f"--tmp_path={data}/tmp/",
        f"--user_files_path={data}/user_files/",
        f"--format_schema_path={data}/format_schemas/",
    ]
    proc = Proc("clickhouse", args, dict(os.environ), tmp / "clickhouse.log", cwd=data)

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"clickhouse-server exited:\n{proc.tail()}")
        from clickhouse_driver import Client

        Client("127.0.0.1", port=tcp, connect_timeout=1).execute("SELECT 1")
        return True

    wait_until(ready, 60, "clickhouse-server to answer", step=0.1)
    return proc, tcp


def lifecycle(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


async def _read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from the beginning up to the end offsets seen now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(10):
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list[Any] = []
            for tp in partitions:
                while await consumer.position(tp) < ends[tp]:
                    batches = await consumer.getmany(tp, timeout_ms=500)
                    records.extend(batches.get(tp, []))
            return records
    finally:
        await consumer.stop()


def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic` now, read with a real consumer."""
    return asyncio.run(_read_topic(bootstrap, topic))


def start_prometheus(
    tmp: Path, targets: dict[str, int], interval_s: float = 1.0
) -> tuple[Proc, int]:
    """Debian's Prometheus server scraping `targets` (job name -> port on loopback) every
    `interval_s`, on a free port; ready when it returns."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is missing: `make test` installs it"
    port = free_port()
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{target}']"
        for job, target in targets.items()
    )
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {int(interval_s * 1000)}ms\n"
        f"  evaluation_interval: {int(interval_s * 1000)}ms\n"
        f"scrape_configs:\n{jobs}\n"
    )
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    proc = Proc("prometheus", args, dict(os.environ), tmp / "prometheus.log")

    def ready() -> bool:
        assert proc.alive(), proc.tail()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "Prometheus to be ready", step=0.1)
    return proc, port
