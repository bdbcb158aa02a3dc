"""Child processes: free ports, a restartable process with its output captured, and waits.

A `Process` writes its output to `<log_dir>/<name>.log` (tests, chaos, benchmarks: read it
with `log_tail` when something fails), or, with `echo`, streams it line by line prefixed with
its name (the local stack's terminal).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Process:
    """A child process with captured output; restartable with the same argv and environment.

    `env` is added to this process's environment. `echo`: stream the output, prefixed with the
    name, to that text stream instead of a log file (and run the child in its own session, so
    Ctrl-C reaches only the parent, which stops the children in order).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path | None = None,
        echo: TextIO | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        if (log_dir is None) == (echo is None):
            raise ValueError("give a log_dir or an echo stream (one of them)")
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **env}
        self.cwd = cwd
        self._log_path = (log_dir / f"{name}.log") if log_dir is not None else None
        self._echo = echo
        self._echo_lock = threading.Lock()
        self._tail: list[str] = []
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The log file (not for an echoing process, whose output goes to its stream)."""
        if self._log_path is None:
            raise RuntimeError(f"{self.name} echoes its output; it has no log file")
        return self._log_path

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def start(self) -> Process:
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self._popen = subprocess.Popen(
                    self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
                )
            return self
        self._popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, args=(self._popen,), daemon=True).start()
        return self

    def _pump(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        assert self._echo is not None
        for raw in popen.stdout:
            line = raw.decode(errors="replace")
            self._tail = [*self._tail[-199:], line.rstrip("\n")]
            with self._echo_lock:
                self._echo.write(f"{self.name:<8}| {line}")
                self._echo.flush()

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def kill(self) -> None:
        """SIGKILL: the crash the chaos scenarios inject."""
        kill_together([self])

    def send_signal(self, sig: signal.Signals) -> bool:
        """Send `sig` if the process is alive; whether it was."""
        if self._popen is None or not self.alive():
            return False
        self._popen.send_signal(sig)
        return True

    def pause(self) -> None:
        """SIGSTOP: freeze every thread where it stands (until `resume` or a SIGKILL)."""
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)

    def wait_exit(self, timeout: float = 10.0) -> int | None:
        """Reap the process once it exits; its return code (None if it never started)."""
        return None if self._popen is None else self._popen.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self._popen is None or not self.alive():
            return
        self._popen.terminate()
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_size(self) -> int:
        """Bytes of output so far (a mark for `log_since`)."""
        if self._log_path is None or not self._log_path.exists():
            return 0
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        """The output written after `offset` (see `log_size`)."""
        if self._log_path is None:
            return "\n".join(self._tail)
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None:
            return "\n".join(self._tail[-lines:])
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def kill_together(processes: Iterable[Process], timeout: float = 10.0) -> None:
    """SIGKILL every live process first, then reap them all: the processes die in the same
    instant (a power cut), not one after another while the others keep writing."""
    killed = [process for process in processes if process.send_signal(signal.SIGKILL)]
    for process in killed:
        process.wait_exit(timeout=timeout)


def poll(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    process: Process | None = None,
    every: float = 0.1,
) -> T:
    """Call `probe` until it returns something truthy, and return that; fail with the process's
    log tail if it dies or time runs out. The harness's only way to wait: no fixed sleeps."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.name} exited while waiting for {what}:\n{process.log_tail()}"
            )
        last = probe()
        if last:
            return last
        time.sleep(every)
    tail = process.log_tail() if process is not None else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{tail}")


def wait_until(
    what: str,
    probe: Callable[[], object],
    *,
    timeout: float,
    process: Process | None = None,
    every: float = 0.1,
) -> None:
    """`poll` for a condition (the value is not needed)."""
    poll(what, probe, timeout=timeout, process=process, every=every)


def http_ok(url: str) -> Callable[[], bool]:
    """A probe: GET `url` answers below 500."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    return probe
