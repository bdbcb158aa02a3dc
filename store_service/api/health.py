"""Health of the store: one probe per component, and the overall verdict.

Components (each reported with `status` and `latency_ms`, plus a `detail` when not ok; the
broker also with `queue_messages` and `queue_consumers`, the sync queue's depth and consumer
count as RabbitMQ reports them):

| component | ok when | otherwise |
|---|---|---|
| database | the SQLite file opens and the schema answers a query, and writes succeed | down |
| broker | RabbitMQ answers a passive declare of the sync queue (dev broker: always) | down |
|        | and no message waits there without a consumer | degraded |
| central | `GET {STORE_CENTRAL_URL}/health` answers below 500 | down |
| worker | the worker heartbeat is younger than 3 x `STORE_WORKER_HEARTBEAT_SECONDS` | down |
| backlog | oldest pending younger than `..._BACKLOG_MAX_AGE_SECONDS`, no auth failure | degraded |

Overall: `down` (HTTP 503) when the database is down — the API cannot take a single update;
`degraded` (HTTP 200) when anything else is not ok — updates are still accepted and kept
locally (local-first), sync waits; `ok` (HTTP 200) otherwise. The broker and central probes are
network calls: their results are reused for `STORE_HEALTH_CACHE_SECONDS`, so polling health
cannot be turned into a load on central or RabbitMQ.

While the API's writes fail for a storage condition (a full disk, a read-only or vanished file:
`store_service.storage.faults`), the database is down, whatever reads still do; each health
check then tries one small write of its own, so the component recovers by itself once space
returns, even with no update arriving to prove it.
"""

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import httpx

from store_service.config import Settings
from store_service.storage.db import connect, transaction
from store_service.storage.faults import StorageFaults, classify
from store_service.sync import heartbeat, state
from store_service.sync.heartbeat import STALE_AFTER_INTERVALS
from store_service.sync.queue import measured, queue_stats
from store_service.sync.status import summary as sync_summary


class HealthStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # updates are still taken and kept locally; sync waits
    DOWN = "down"  # the store cannot take a single update


OK, DEGRADED, DOWN = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.DOWN
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Finding:
    """A probe's answer when it has more to say than a status and a detail."""

    status: HealthStatus
    detail: str | None = None
    queue_messages: int | None = None
    queue_consumers: int | None = None


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    status: HealthStatus
    latency_ms: float
    detail: str | None = None
    queue_messages: int | None = None
    queue_consumers: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def overall(components: dict[str, ComponentHealth]) -> HealthStatus:
    """`down` if the database is down, `degraded` if anything else is not ok, else `ok`."""
    if components["database"].status != OK:
        return DOWN
    if any(component.status != OK for component in components.values()):
        return DEGRADED
    return OK


def http_status(status: HealthStatus) -> int:
    return 503 if status == DOWN else 200


# --- the probes (blocking; each runs in a thread) ------------------------------------------


def probe_database(settings: Settings) -> tuple[HealthStatus, str | None]:
    path = settings.database_path
    if not path.exists():
        return DOWN, "database file missing"
    conn = connect(path, readonly=True, synchronous=settings.sqlite_synchronous)
    try:
        conn.execute("SELECT count(*) FROM sync_state").fetchone()
    finally:
        conn.close()
    return OK, None


PROBE_BUSY_TIMEOUT_MS = 1_000


def probe_storage(settings: Settings, faults: StorageFaults) -> tuple[HealthStatus, str | None]:
    """One small write while `faults` has a condition: down while it fails, clears it if not."""
    condition = faults.condition
    if condition is None:
        return OK, None
    try:
        conn = connect(settings.database_path, synchronous=settings.sqlite_synchronous)
        try:
            conn.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
            with transaction(conn):
                state.put(conn, state.Fact.STORAGE_PROBE, time.time(), now=time.time())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if classify(exc) is None:
            raise
        faults.failed(exc)
        seconds = faults.unavailable_for() or 0.0
        return DOWN, f"{faults.condition or condition}: writes fail for {seconds:.0f}s"
    faults.succeeded()
    return OK, None


def probe_broker(settings: Settings) -> Finding:
    """One passive declare proves the broker answers and gives the sync queue's figures."""
    if not measured(settings):
        return Finding(OK, "filesystem broker (development)")
    stats = queue_stats(settings, timeout=PROBE_TIMEOUT_SECONDS)
    status = DEGRADED if stats.piling_up else OK
    detail = stats.describe() if stats.piling_up or not stats.declared else None
    return Finding(status, detail, stats.messages, stats.consumers)


def probe_central(settings: Settings) -> tuple[HealthStatus, str | None]:
    response = httpx.get(f"{settings.central_url}/health", timeout=PROBE_TIMEOUT_SECONDS)
    if response.status_code >= 500:
        return DOWN, f"HTTP {response.status_code}"
    return OK, None


def probe_worker(settings: Settings) -> tuple[HealthStatus, str | None]:
    conn = connect(settings.database_path, readonly=True, synchronous=settings.sqlite_synchronous)
    try:
        beat = heartbeat.read(conn)
    finally:
        conn.close()
    if beat is None:
        return DOWN, "no worker heartbeat yet"
    age = time.time() - float(beat["at"])
    if age > STALE_AFTER_INTERVALS * settings.worker_heartbeat_seconds:
        return DOWN, f"last worker heartbeat {age:.0f}s ago ({beat.get('hostname')})"
    return OK, None


def probe_backlog(settings: Settings) -> tuple[HealthStatus, str | None]:
    conn = connect(settings.database_path, readonly=True, synchronous=settings.sqlite_synchronous)
    try:
        summary = sync_summary(conn, now=time.time())
    finally:
        conn.close()
    if summary["auth_failed"]:
        return DEGRADED, "central refuses the store's credentials"
    age = summary["oldest_pending_age_seconds"]
    if age is not None and age > settings.health_backlog_max_age_seconds:
        return DEGRADED, f"oldest pending change is {age:.0f}s old"
    return OK, None


Probe = Callable[[Settings], tuple[HealthStatus, str | None] | Finding]
PROBES: dict[str, Probe] = {
    "database": probe_database,
    "broker": probe_broker,
    "central": probe_central,
    "worker": probe_worker,
    "backlog": probe_backlog,
}
# Network probes whose answers are reused for `health_cache_seconds`.
CACHED = frozenset({"broker", "central"})


async def _timed(name: str, probe: Probe, settings: Settings) -> ComponentHealth:
    started = time.perf_counter()
    failed = DEGRADED if name == "backlog" else DOWN
    try:
        answer = await asyncio.wait_for(
            asyncio.to_thread(probe, settings), timeout=PROBE_TIMEOUT_SECONDS + 1
        )
        finding = answer if isinstance(answer, Finding) else Finding(*answer)
    except TimeoutError:
        finding = Finding(failed, "probe timed out")
    except Exception as exc:
        # The exception's type and message only: never a URL with credentials in it.
        finding = Finding(failed, _describe(exc))
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return ComponentHealth(
        finding.status,
        latency_ms,
        finding.detail,
        finding.queue_messages,
        finding.queue_consumers,
    )


def _describe(exc: Exception) -> str:
    text = str(exc).split("://", 1)[0]  # cut before any URL (it could carry a password)
    return f"{type(exc).__name__}: {text}"[:200]


class HealthChecker:
    """Runs the probes concurrently; the network ones are cached and never run twice at once."""

    def __init__(
        self,
        settings: Settings,
        probes: dict[str, Probe] | None = None,
        *,
        storage: StorageFaults | None = None,
    ) -> None:
        self.settings = settings
        self.probes = probes or PROBES
        self.storage = storage  # the API writer's storage condition, for the database
        self._cache: dict[str, tuple[float, ComponentHealth]] = {}
        self._locks = {name: asyncio.Lock() for name in CACHED}

    async def check(self) -> tuple[HealthStatus, dict[str, ComponentHealth]]:
        names = list(self.probes)
        results = await asyncio.gather(*(self._component(name) for name in names))
        components = dict(zip(names, results, strict=True))
        return overall(components), components

    async def _component(self, name: str) -> ComponentHealth:
        probe = self.probes[name]
        storage = self.storage
        if name == "database" and storage is not None and storage.condition is not None:
            read = await _timed(name, probe, self.settings)
            if read.status != OK:
                return read
            return await _timed(name, lambda s: probe_storage(s, storage), self.settings)
        if name not in CACHED:
            return await _timed(name, probe, self.settings)
        return await self._cached(name, lambda: _timed(name, probe, self.settings))

    async def _cached(
        self, name: str, run: Callable[[], Awaitable[ComponentHealth]]
    ) -> ComponentHealth:
        async with self._locks[name]:
            hit = self._cache.get(name)
            if hit is not None and time.monotonic() - hit[0] < self.settings.health_cache_seconds:
                return hit[1]
            result = await run()
            self._cache[name] = (time.monotonic(), result)
            return result
