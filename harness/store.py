"""The store's processes for the harness: its environment, the API, workers and beat.

api = launch_store_api(workdir, env=store_env(workdir / "store.db", ...))
worker = launch_worker(env, log_dir); wait_worker_ready(worker)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.commands import STORE_APP, celery_argv, uvicorn_argv, worker_argv
from harness.processes import Process, free_port, http_ok, wait_until

START_TIMEOUT_SECONDS = 90.0  # imports take seconds on a busy 2-core machine
READY_PATH = "/v1/local/inventory"  # answers once the lifespan has migrated and opened the file


def store_env(database: Path, **overrides: str) -> dict[str, str]:
    """The environment of a store process on `database` (its data dir beside it)."""
    env = {
        "STORE_DATABASE_URL": f"sqlite:///{database}",
        "STORE_DATA_DIR": str(database.parent),
        "STORE_LOG_LEVEL": "WARNING",
        "STORE_MIGRATE_ON_STARTUP": "true",
    }
    env.update(overrides)
    return env


def private_queue(prefix: str = "test") -> str:
    """A sync queue of the store's own, so stacks sharing one RabbitMQ never take each other's
    messages (delete it with `harness.broker.delete_queue`)."""
    return f"store.sync.{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class StoreApi:
    process: Process
    base_url: str
    database: Path
    env: dict[str, str]

    def wait_ready(self) -> None:
        wait_until(
            "the store API",
            http_ok(self.base_url + READY_PATH),
            timeout=START_TIMEOUT_SECONDS,
            process=self.process,
        )

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        self.wait_ready()


def launch_store_api(
    workdir: Path,
    *,
    env: dict[str, str],
    port: int | None = None,
    log_dir: Path | None = None,
    name: str = "store-api",
    server_args: Sequence[str] = (),
) -> StoreApi:
    """Start the store API under uvicorn (on `port`, or a free one) without waiting."""
    port = port or free_port()
    process = Process(
        name,
        uvicorn_argv(STORE_APP, port, server_args=server_args),
        env=env,
        log_dir=log_dir or workdir / "logs",
    ).start()
    database = Path(env["STORE_DATABASE_URL"].removeprefix("sqlite:///"))
    return StoreApi(process, f"http://127.0.0.1:{port}", database, env)


def launch_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Process:
    """Start a store worker (solo pool: SIGKILL kills the run itself); see `wait_worker_ready`."""
    node = f"{name}-{uuid.uuid4().hex[:6]}@localhost"
    return Process(name, worker_argv(node), env=env, log_dir=log_dir).start()


def wait_worker_ready(worker: Process, *, since: int = 0) -> None:
    """Wait until the worker logged that it consumes (after byte `since` of its log)."""
    wait_until(
        f"{worker.name} to be ready",
        lambda: " ready." in worker.log_since(since),
        timeout=START_TIMEOUT_SECONDS,
        process=worker,
        every=0.2,
    )


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Process:
    process = launch_worker(env, log_dir, name)
    wait_worker_ready(process)
    return process


def launch_beat(env: dict[str, str], log_dir: Path) -> Process:
    return Process("beat", celery_argv("beat", "--loglevel=INFO"), env=env, log_dir=log_dir).start()


def start_store_api(
    workdir: Path, *, port: int | None = None, server_args: Sequence[str] = (), **env: str
) -> StoreApi:
    """The store API on `workdir/store.db` (extra environment as keywords), once it answers;
    `server_args` are more options of the server command (`harness.commands.uvicorn_argv`)."""
    api = launch_store_api(
        workdir, env=store_env(workdir / "store.db", **env), port=port, server_args=server_args
    )
    try:
        api.wait_ready()
    except BaseException:
        api.process.stop()
        raise
    return api
