"""`lifecycle up` as a user runs it: everything starts, demo users appear, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from schemas.client import EventProducer
from schemas.order import OrderEvent
from sinks.chdb import ChdbClient
from tests.integration.parts import (
    Proc,
    free_port,
    lifecycle,
    metric_at,
    port_listening,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def alert_names() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    return [rule["alert"] for group in rules for rule in group["rules"]]


def _up_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "EMBEDDED")}
    env.update(
        {
            "EMBEDDED_BROKER_PORT": str(free_port()),
            "API_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
            "CLICKHOUSE_HTTP_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "DEMO_USERS": "200",
            "DEMO_DAYS": "20",
        }
    )
    env.pop("API_KEYS", None)
    env.pop("ADMIN_API_KEYS", None)
    return env


def _stop(up: Proc) -> str:
    assert up.stop(signal.SIGINT, grace=60) == 0, up.tail()
    return up.log.read_text()


def test_up_runs_everything_and_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    env = _up_env(tmp_path)
    api = f"http://127.0.0.1:{env['API_PORT']}"
    names = ("EMBEDDED_BROKER_PORT", "API_PORT", "WORKER_METRICS_PORT", "CLICKHOUSE_HTTP_PORT",
             "PROMETHEUS_PORT")  # fmt: skip
    ports = [int(env[k]) for k in names]
    up = Proc("up", lifecycle("up"), env, tmp_path / "up.log", cwd=tmp_path)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in up.log.read_text(), 120, "the banner")
        banner = up.log.read_text()
        assert f"{api}/docs" in banner
        assert "X-API-Key: dev" in banner
        assert "'dev-admin' (admin)" in banner
        assert "'dev-producer' (producer)" in banner

        def first_user() -> dict[str, object] | None:
            response = httpx.get(f"{api}/v1/users/u00000", headers={"X-API-Key": "dev"})
            return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

        document = wait_until(first_user, 60, "a demo user in the API", step=0.2)
        assert document["stage"] in {"potential", "new", "active", "silent", "churned"}

        # A shop's order now (history fires nothing): first_order fires, and the demo's push
        # service answers it with touches: the loop closes.
        order = OrderEvent(
            event_id="up-o-1", type="order_paid", user_id="up-buyer", ts=datetime.now(tz=UTC),
            order_id="up-order-1", amount="88.00", currency="CNY",
        )  # fmt: skip
        with EventProducer(f"127.0.0.1:{env['EMBEDDED_BROKER_PORT']}") as producer:
            producer.send(order)

        def a_trigger() -> list[object]:
            response = httpx.get(f"{api}/v1/triggers?limit=5", headers={"X-API-Key": "dev"})
            return response.json()["items"] if response.status_code == 200 else []  # type: ignore[no-any-return]

        wait_until(a_trigger, 60, "a trigger in the feed", step=0.2)
        worker_port = int(env["WORKER_METRICS_PORT"])
        wait_until(
            lambda: metric_at(worker_port, "lifecycle_trigger_outcomes_total") > 0,
            60, "a touch answering a trigger", step=0.2,
        )  # fmt: skip
        # ClickHouse is readable while the pipeline runs: chDB through the worker's HTTP
        # interface, as a server's would be (a person's curl, Grafana), and the API's KPIs.
        clickhouse = f"http://127.0.0.1:{env['CLICKHOUSE_HTTP_PORT']}"
        assert f"clickhouse  {clickhouse}" in banner
        assert httpx.get(f"{clickhouse}/ping").text == "Ok.\n"
        count = httpx.get(clickhouse, params={"query": "SELECT count() FROM events"})
        assert count.status_code == 200
        assert int(count.text) > 0
        write = httpx.post(clickhouse, content=b"DROP TABLE events")
        assert write.status_code == 403
        assert write.text.startswith("Code: 164.")
        # Reads that would reach files: ClickHouse refuses them in readonly mode.
        outside = httpx.get(
            clickhouse, params={"query": "SELECT * FROM file('/etc/hostname', 'LineAsString')"}
        )
        assert outside.status_code == 400
        assert "readonly" in outside.text.lower()
        target = tmp_path / "written.txt"
        outfile = httpx.post(clickhouse, content=f"SELECT 1 INTO OUTFILE '{target}'".encode())
        assert outfile.status_code == 400
        assert not target.exists()
        rebound = httpx.get(
            clickhouse,
            params={"query": "SELECT 1"},
            headers={"Host": f"evil.example:{env['CLICKHOUSE_HTTP_PORT']}"},
        )
        assert rebound.status_code == 403
        kpis = httpx.get(f"{api}/v1/kpis", headers={"X-API-Key": "dev"}, timeout=30)
        assert kpis.status_code == 200, kpis.text
        assert kpis.json()["kpis"]["gmv"]["value"] > 0
        assert kpis.json()["rooms"]
        # Prometheus evaluates the alert rules live and scrapes both processes.
        prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
        assert f"alerts      {prometheus}/alerts" in banner
        groups = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
        loaded = {rule["name"] for group in groups for rule in group["rules"]}
        assert loaded == set(alert_names())

        def targets_up() -> set[str]:
            active = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
            return {t["labels"]["job"] for t in active if t["health"] == "up"}

        wait_until(lambda: targets_up() == {"lifecycle-api", "lifecycle-worker"}, 60,
                   "Prometheus to scrape the API and the worker")  # fmt: skip
        # The worker's own probes, for a Kubernetes pod.
        assert httpx.get(f"http://127.0.0.1:{worker_port}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{worker_port}/readyz").status_code in (200, 503)
        children = _children(up.proc.pid)
        assert len(children) == 5  # broker, worker, api, prometheus, demo
    finally:
        output = _stop(up)
    assert "stopped; nothing left running." in output
    for pid in children:
        wait_until(lambda pid=pid: not _alive(pid), 10, f"child {pid} to exit")  # type: ignore[misc]
    for port in ports:
        assert not port_listening(port), f"port {port} still open after Ctrl-C"

    client = ChdbClient(tmp_path / ".lifecycle" / "chdb")
    try:
        events = client.query("SELECT count() AS n FROM events")[0]["n"]
        outcomes = client.query("SELECT count() AS n FROM trigger_outcomes")[0]["n"]
    finally:
        client.close()
    assert int(events) > 0
    assert int(outcomes) > 0

    # A second run starts a new, empty broker: it must not serve the previous run's users.
    again = Proc("up2", [*lifecycle("up"), "--no-demo"], env, tmp_path / "up2.log", cwd=tmp_path)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in again.log.read_text(), 120, "the banner")
        assert "cleared the previous run's" in again.log.read_text()
        wait_until(lambda: httpx.get(f"{api}/readyz").status_code == 200, 60, "ready")
        response = httpx.get(f"{api}/v1/users/u00000", headers={"X-API-Key": "dev"})
        assert response.status_code == 404
    finally:
        assert "stopped; nothing left running." in _stop(again)


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    env = _up_env(tmp_path)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(env["API_PORT"])))
        busy.listen()
        up = Proc("up", [*lifecycle("up"), "--no-demo"], env, tmp_path / "up.log", cwd=tmp_path)
        code = wait_until(lambda: up.proc.poll(), 30, "`lifecycle up` to give up")
    assert code == 1
    assert "is in use" in up.log.read_text()
    assert not port_listening(int(env["EMBEDDED_BROKER_PORT"]))


def test_ctrl_c_while_starting_stops_at_once(tmp_path: Path) -> None:
    env = _up_env(tmp_path)
    up = Proc("up", [*lifecycle("up"), "--no-demo"], env, tmp_path / "up.log", cwd=tmp_path)
    wait_until(lambda: port_listening(int(env["EMBEDDED_BROKER_PORT"])), 60, "the broker")
    children = _children(up.proc.pid)
    assert "Ctrl-C stops everything" not in up.log.read_text()  # still starting
    # Not after the start's waits (a minute each): at once, everything it started stopped.
    assert up.stop(signal.SIGINT, grace=20) == 0, up.tail()
    output = up.log.read_text()
    assert "stopped while starting" in output
    assert "stopped; nothing left running." in output
    for pid in children:
        wait_until(lambda pid=pid: not _alive(pid), 10, f"child {pid} to exit")  # type: ignore[misc]
    assert not port_listening(int(env["EMBEDDED_BROKER_PORT"]))
