"""The worker's heartbeat: a row in `sync_state` the worker refreshes and health reads.

A thread in the worker's main process writes it every `worker_heartbeat_seconds`, in its own
tiny transaction, so health can tell "a worker process is up" without asking the broker (a
broker ping would make health hammer RabbitMQ and would say nothing while the broker is down).
The heartbeat says the process lives; `bin/worker_healthcheck.py` asks the worker itself.
"""

import os
import socket
import sqlite3
import threading
import time
from typing import Any

import structlog

from store_service.config import Settings
from store_service.storage.db import connect, transaction
from store_service.sync import state

log = structlog.get_logger(__name__)

# A heartbeat older than this many intervals means no worker is alive.
STALE_AFTER_INTERVALS = 3


def beat_once(conn: sqlite3.Connection, *, hostname: str, now: float) -> None:
    with transaction(conn):
        state.put(
            conn,
            state.Fact.WORKER_HEARTBEAT,
            {"at": now, "hostname": hostname, "pid": os.getpid()},
            now=now,
        )


def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
    value = state.get(conn, state.Fact.WORKER_HEARTBEAT)
    return value if isinstance(value, dict) else None


class HeartbeatThread:
    """Writes the heartbeat now and then every `interval` seconds until stopped."""

    def __init__(self, settings: Settings, hostname: str | None = None) -> None:
        self._path = settings.database_path
        self._synchronous = settings.sqlite_synchronous
        self._interval = settings.worker_heartbeat_seconds
        self._hostname = hostname or socket.gethostname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-heartbeat", daemon=True)

    def start(self) -> "HeartbeatThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            try:
                conn = conn or connect(self._path, synchronous=self._synchronous)
                beat_once(conn, hostname=self._hostname, now=time.time())
            except sqlite3.Error as exc:
                # No schema yet (the API migrates) or a locked file: try again next interval.
                log.warning("worker_heartbeat_failed", error=repr(exc))
                if conn is not None:
                    conn.close()
                    conn = None
            self._stop.wait(self._interval)
        if conn is not None:
            conn.close()
