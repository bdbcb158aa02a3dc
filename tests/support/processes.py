"""Real processes for integration tests: free ports, server subprocesses, readiness waits."""

import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

# One process class for the chaos runner and the tests (the runner may not import tests/).
from chaos.processes import Process as ManagedProcess
from chaos.processes import free_port

__all__ = ["ManagedProcess", "free_port"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str, how_to_start: str) -> None:
    """Fail in CI, skip with instructions elsewhere, when a service a test needs is absent."""
    if available:
        return
    message = f"{what} is not available; start it with: {how_to_start}"
    if in_ci():
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def uvicorn_argv(app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]


def wait_http_ok(url: str, process: ManagedProcess | None = None, timeout: float = 30.0) -> None:
    """Wait until GET url answers < 500, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code < 500:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    tail = process.log_tail() if process is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout}s ({last_error})\n{tail}")
