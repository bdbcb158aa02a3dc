"""The command line of each part of the system, as the harness starts them.

Servers bind to 127.0.0.1 and log no access lines (request metrics are in /metrics).
"""

import sys
from collections.abc import Sequence

STORE_APP = "store_service.main:app"
CENTRAL_APP = "central_sim.main:app"


def uvicorn_argv(
    app: str, port: int, *, host: str = "127.0.0.1", server_args: Sequence[str] = ()
) -> list[str]:
    """uvicorn serving `app` (the store API or central_sim) on host:port, with the edge protocol
    and limits both services are deployed with (`http_edge.server`); `server_args` are more
    options of that command (`--request-timeout`, `--max-header-bytes`)."""
    return [
        sys.executable,
        "-m",
        "http_edge.server",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        *server_args,
    ]


def store_api_argv(port: int, *, host: str = "127.0.0.1") -> list[str]:
    """The store API as deployed: `python -m store_service.serve` (JSON logs from line one)."""
    return [sys.executable, "-m", "store_service.serve", "--host", host, "--port", str(port)]


def celery_argv(*args: str) -> list[str]:
    """`celery -A store_service.worker ...` (a worker or beat of the store)."""
    return [sys.executable, "-m", "celery", "-A", "store_service.worker", *args]


def worker_argv(node: str, *, pool: str = "solo") -> list[str]:
    """A store worker; the solo pool runs the task in the main process, so SIGKILL kills the
    run itself (what the chaos scenarios need)."""
    return celery_argv(
        "worker", f"--pool={pool}", "--without-mingle", "--without-gossip", "-n", node
    )
