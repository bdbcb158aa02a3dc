"""Child processes for a chaos run: free ports, a restartable process with a log file, waits.

The chaos runner is a product command (`python -m chaos run`), so it cannot import from
`tests/`; the tests import the process class from here instead (`tests/support/processes.py`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_argv(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "store_service.worker", *args]


class Process:
    """A child process logging to `<log_dir>/<name>.log`; restartable with the same argv/env."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash the scenarios inject."""
        if self._popen is not None and self.alive():
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self._popen is None or not self.alive():
            return
        self._popen.terminate()
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    what: str,
    probe: Callable[[], bool],
    *,
    timeout: float,
    process: Process | None = None,
    every: float = 0.1,
) -> None:
    """Poll `probe` until true; fail with the process's log tail if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.name} exited while waiting for {what}:\n{process.log_tail()}"
            )
        if probe():
            return
        time.sleep(every)
    tail = process.log_tail() if process is not None else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    return probe
