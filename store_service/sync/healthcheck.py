"""Exit 0 only when a Celery worker of this store answers a ping within the timeout.

    store-worker-healthcheck [--timeout 5] [--any-queue]
    python bin/worker_healthcheck.py ...      # the same, from a checkout

Reads the store's settings from the environment (`STORE_BROKER_URL`, `STORE_SYNC_QUEUE`, ...),
sends Celery's broadcast `ping` over the broker, then asks the workers that answered which
queues they consume: a worker counts only if it consumes `STORE_SYNC_QUEUE` (so a shared
broker's other stores' workers do not make this one look healthy; `--any-queue` skips that).
The ping is answered by the worker's consumer even while a sync task runs (threads pool); a
solo-pool worker answers between tasks only.

On RabbitMQ the answer also gives the sync queue's depth and consumer count (a passive
declare, `store_service.sync.queue`), so "messages piling up with no consumer" shows in the
reason a failing check prints.

Exit codes: 0 healthy; 1 no worker of this store answered; 2 the broker could not be reached.
The reason is printed on one line either way (Docker keeps it in `docker inspect`).
"""

import argparse
import sys
from collections.abc import Sequence

from store_service.config import Settings
from store_service.sync.celery_app import create_celery
from store_service.sync.queue import measured, queue_stats

EXIT_OK, EXIT_NO_WORKER, EXIT_BROKER = 0, 1, 2


def check(settings: Settings, *, timeout: float, any_queue: bool) -> tuple[int, str]:
    code, message = check_worker(settings, timeout=timeout, any_queue=any_queue)
    if code == EXIT_BROKER or not measured(settings):
        return code, message
    try:
        stats = queue_stats(settings, timeout=timeout)
    except Exception as exc:  # the queue figure is extra information, never the verdict
        return code, f"{message}; queue not measured: {type(exc).__name__}"
    return code, f"{message}; {stats.describe()}"


def check_worker(settings: Settings, *, timeout: float, any_queue: bool) -> tuple[int, str]:
    app = create_celery(settings)
    try:
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
        except Exception as exc:
            return EXIT_BROKER, f"broker unreachable: {type(exc).__name__}: {exc}"
        replies = app.control.ping(timeout=timeout) or []
        names = sorted(name for reply in replies for name in reply)
        if not names:
            return EXIT_NO_WORKER, f"no worker answered a ping within {timeout}s"
        if any_queue:
            return EXIT_OK, f"ok: {', '.join(names)} answered"
        queues = app.control.inspect(destination=names, timeout=timeout).active_queues() or {}
        serving = sorted(
            name
            for name, consumed in queues.items()
            if any(queue.get("name") == settings.sync_queue for queue in consumed or [])
        )
        if not serving:
            return (
                EXIT_NO_WORKER,
                f"{len(names)} worker(s) answered but none consumes queue {settings.sync_queue}",
            )
        return EXIT_OK, f"ok: {', '.join(serving)} consume {settings.sync_queue}"
    finally:
        app.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    parser.add_argument("--any-queue", action="store_true", help="any worker on the broker will do")
    args = parser.parse_args(argv)
    code, message = check(Settings(), timeout=args.timeout, any_queue=args.any_queue)
    print(message, file=sys.stdout if code == EXIT_OK else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
