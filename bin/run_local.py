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
from collections.abc import Sequence
from pathlib import Path

from dotenv import dotenv_values

from harness.commands import CENTRAL_APP, celery_argv, store_api_argv, uvicorn_argv
from harness.processes import REPO_ROOT, Process, http_ok, wait_until

ROOT = REPO_ROOT
STOP_TIMEOUT_SECONDS = 15.0
START_TIMEOUT_SECONDS = 60.0


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
    data_dir = Path(env.get("STORE_DATA_DIR", "data"))
    return {
        "central": uvicorn_argv(CENTRAL_APP, args.central_port, host=args.host),
        # JSON logs from the first line (logging is configured before uvicorn starts).
        "api": store_api_argv(args.api_port, host=args.host),
        "worker": celery_argv("--quiet", "worker", "--pool=threads", "--concurrency", "1",
                              "--loglevel", "INFO", "--without-gossip", "--without-mingle"),
        "beat": celery_argv("--quiet", "beat", "--loglevel", "INFO",
                            "--schedule", str(data_dir / "celerybeat-schedule")),
    }  # fmt: skip


class Stack:
    """The child processes, their prefixed output, and an orderly stop."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, Process] = {}
        self._lock = threading.Lock()

    def start(self, name: str, argv: Sequence[str]) -> Process:
        child = Process(name, argv, env=self.env, echo=sys.stdout).start()
        self.children[name] = child
        return child

    def say(self, message: str) -> None:
        with self._lock:
            sys.stdout.write(f"{'stack':<8}| {message}\n")
            sys.stdout.flush()

    def exited(self) -> str | None:
        for name, child in self.children.items():
            if not child.alive():
                return name
        return None

    def wait_ready(self, name: str, url: str) -> None:
        wait_until(name, http_ok(url), timeout=START_TIMEOUT_SECONDS, process=self.children[name])

    def stop(self) -> None:
        # Producers first, central last, so the worker can finish a batch against it.
        for name in ("beat", "api", "worker", "central"):
            child = self.children.get(name)
            if child is not None:
                child.stop(timeout=STOP_TIMEOUT_SECONDS)
        self.say("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--central-port", type=int, default=8000)
    parser.add_argument("--api-port", type=int, default=8001)
    args = parser.parse_args(argv)

    central_url = f"http://{args.host}:{args.central_port}"
    env = stack_env(ROOT, {"STORE_CENTRAL_URL": os.environ.get("STORE_CENTRAL_URL", central_url)})
    Path(env.get("STORE_DATA_DIR", "data")).mkdir(parents=True, exist_ok=True)

    stack = Stack(env)
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
        stack.wait_ready("central", f"{central_url}/health")
        stack.start("api", cmds["api"])
        stack.wait_ready("api", f"http://{args.host}:{args.api_port}/v1/local/inventory")
        stack.start("worker", cmds["worker"])
        stack.start("beat", cmds["beat"])
        api_url = f"http://{args.host}:{args.api_port}"
        stack.say(
            f"ready: store API {api_url}/docs, central_sim {central_url}/docs; "
            "Ctrl-C stops everything"
        )
        # The consoles (docs/console.md): the panel signs in with CENTRAL_SIM_ADMIN_TOKEN, the
        # store console with an API key when STORE_API_KEYS is set.
        stack.say(f"store console {api_url}/console")
        stack.say(f"central_sim panel {central_url}/_sim/console")
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
