#!/usr/bin/env python3
"""Start the whole system locally against the simulator: central_sim, store API, worker, beat.

    uv run python bin/run_local.py            # Ctrl-C stops everything

Embedded defaults: SQLite files under ./data, and when STORE_BROKER_URL is unset the Celery
worker and beat use kombu's filesystem transport under ./data/broker (development only: it never
fsyncs). Configuration comes from the environment, then `.env`, then `.env.example` (the
development defaults, including the seed's two service identities).
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_SECONDS = 15.0


def stack_env(root: Path, overrides: dict[str, str]) -> dict[str, str]:
    """Process env, then .env, then .env.example: the first that sets a variable wins."""
    env: dict[str, str] = {}
    for name in (".env.example", ".env"):
        path = root / name
        if path.exists():
            env.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    env.update(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def commands(args: argparse.Namespace, env: dict[str, str]) -> dict[str, list[str]]:
    py = sys.executable
    data_dir = Path(env.get("STORE_DATA_DIR", "data"))
    return {
        "central": [py, "-m", "uvicorn", "central_sim.main:app", "--host", args.host,
                    "--port", str(args.central_port), "--no-access-log"],
        # JSON logs from the first line (logging is configured before uvicorn starts).
        "api": [py, "-m", "store_service.serve", "--host", args.host,
                "--port", str(args.api_port)],
        "worker": [py, "-m", "celery", "-A", "store_service.worker", "--quiet", "worker",
                   "--pool=threads", "--concurrency", "1", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle"],
        "beat": [py, "-m", "celery", "-A", "store_service.worker", "--quiet", "beat",
                 "--loglevel", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
    }  # fmt: skip


class Stack:
    """The child processes, their prefixed output, and an orderly stop."""

    def __init__(self, env: dict[str, str], out: IO[str]) -> None:
        self.env = env
        self.out = out
        self.children: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()

    def start(self, name: str, argv: Sequence[str]) -> None:
        child = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self.children[name] = child
        threading.Thread(target=self._pump, args=(name, child), daemon=True).start()

    def _pump(self, name: str, child: subprocess.Popen[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            with self._lock:
                self.out.write(f"{name:<8}| {line}")
                self.out.flush()

    def say(self, message: str) -> None:
        with self._lock:
            self.out.write(f"{'stack':<8}| {message}\n")
            self.out.flush()

    def exited(self) -> str | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        # Producers first, central last, so the worker can finish a batch against it.
        for name in ("beat", "api", "worker", "central"):
            child = self.children.get(name)
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        self.say("stopped")


def wait_ready(url: str, stack: Stack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (name := stack.exited()) is not None:
            raise RuntimeError(f"{name} exited during start-up")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--central-port", type=int, default=8000)
    parser.add_argument("--api-port", type=int, default=8001)
    args = parser.parse_args(argv)

    central_url = f"http://{args.host}:{args.central_port}"
    env = stack_env(ROOT, {"STORE_CENTRAL_URL": os.environ.get("STORE_CENTRAL_URL", central_url)})
    Path(env.get("STORE_DATA_DIR", "data")).mkdir(parents=True, exist_ok=True)

    stack = Stack(env, sys.stdout)
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cmds = commands(args, env)
    try:
        # The schema first, so the worker never meets an unmigrated database.
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True
        )
        stack.start("central", cmds["central"])
        wait_ready(f"{central_url}/health", stack)
        stack.start("api", cmds["api"])
        wait_ready(f"http://{args.host}:{args.api_port}/v1/local/inventory", stack)
        stack.start("worker", cmds["worker"])
        stack.start("beat", cmds["beat"])
        stack.say(
            f"ready: store API http://{args.host}:{args.api_port}/docs, "
            f"central_sim {central_url}/docs; Ctrl-C stops everything"
        )
        while not stopping.wait(0.5):
            if (name := stack.exited()) is not None:
                stack.say(f"{name} exited; stopping the rest")
                return 1
        return 0
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        stack.say(f"start-up failed: {exc}")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
