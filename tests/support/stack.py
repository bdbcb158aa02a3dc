"""The sync stack as real processes: central_sim, the store API, a Celery worker, beat.

    stack = start_stack(tmp_path, rabbitmq_url, STORE_CONFLICT_STRATEGY="manual")
    stack.update("SKU-1", 5); stack.trigger(); stack.wait_all_final()
    stack.stop()

Each stack gets its own SQLite files, its own central_sim, and its own sync queue
(`STORE_SYNC_QUEUE`), so stacks never steal each other's messages on a shared RabbitMQ; the
queue is deleted on `stop()`.
"""

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from kombu import Connection, Exchange, Queue

from tests.support.central import CentralSim, sim_env
from tests.support.processes import ManagedProcess, free_port, uvicorn_argv, wait_http_ok
from tests.support.store import StoreApi, store_env

T = TypeVar("T")

FINAL = {"synced", "rejected", "discarded"}


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float = 30.0, every: float = 0.2
) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "store_service.worker", *args]


def launch_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> ManagedProcess:
    """Start a Celery worker (solo pool: SIGKILL kills the run itself); see `wait_worker`."""
    node = f"{name}-{uuid.uuid4().hex[:6]}@localhost"
    argv = celery_argv("worker", "--pool=solo", "--without-mingle", "--without-gossip", "-n", node)
    return ManagedProcess(name, argv, env=env, log_dir=log_dir).start()


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> ManagedProcess:
    log_path = log_dir / f"{name}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    process = launch_worker(env, log_dir, name)
    _wait_ready_after(process, offset)
    return process


def _wait_ready_after(process: ManagedProcess, offset: int, timeout: float = 40.0) -> None:
    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        with process.log_path.open("rb") as log:
            log.seek(offset)
            return b" ready." in log.read()

    wait_for(f"{process.name} ready", ready, timeout=timeout)


def start_beat(env: dict[str, str], log_dir: Path) -> ManagedProcess:
    return ManagedProcess(
        "beat", celery_argv("beat", "--loglevel=INFO"), env=env, log_dir=log_dir
    ).start()


def delete_queue(broker_url: str, name: str) -> None:
    """Remove a test's quorum queue and exchange (they are durable: they would pile up)."""
    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        Queue(name, Exchange(name, type="topic"), routing_key=name).bind(channel).delete()
        Exchange(name, type="topic").bind(channel).delete()


@dataclass
class Stack:
    tmp_path: Path
    broker_url: str
    central: CentralSim
    api: StoreApi
    worker: ManagedProcess | None
    env: dict[str, str]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))
    extra: list[ManagedProcess] = field(default_factory=list)
    counter: int = 0

    @property
    def log_dir(self) -> Path:
        return self.tmp_path / "logs"

    # store API
    def update(self, sku: str, delta: int, operation_id: str | None = None) -> str:
        self.counter += 1
        operation_id = operation_id or f"op-{self.counter}-{uuid.uuid4().hex[:8]}"
        response = self.http.post(
            f"{self.api.base_url}/v1/local/inventory/{sku}/update",
            json={"delta": delta, "operation_id": operation_id},
        )
        assert response.status_code == 200, response.text
        return operation_id

    def trigger(self) -> httpx.Response:
        return self.http.post(f"{self.api.base_url}/v1/local/sync/trigger")

    def refresh(self, sku: str) -> dict[str, Any]:
        response = self.http.post(f"{self.api.base_url}/v1/local/inventory/{sku}/refresh")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def item(self, sku: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api.base_url}/v1/local/inventory/{sku}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def change(self, operation_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api.base_url}/v1/local/sync/status/{operation_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def summary(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.api.base_url}/v1/local/sync/summary").json())

    def wait_settled(
        self, operation_ids: list[str], *, settled: set[str] = FINAL, timeout: float = 40.0
    ) -> list[dict[str, Any]]:
        """Trigger now and then until every change is in one of `settled` states."""
        last_trigger = 0.0

        def probe() -> list[dict[str, Any]] | None:
            nonlocal last_trigger
            changes = [self.change(op) for op in operation_ids]
            if all(change["status"] in settled for change in changes):
                return changes
            if time.monotonic() - last_trigger > 2.0:
                # A trigger can land while another run holds the lease; ask again.
                self.trigger()
                last_trigger = time.monotonic()
            return None

        return wait_for(f"changes {settled}", probe, timeout=timeout, every=0.3)

    # central
    def central_item(self, sku: str) -> tuple[int, int]:
        response = self.http.get(
            f"{self.central.base_url}/v1/inventory/{sku}", headers=self.central.auth_headers()
        )
        if response.status_code == 404:
            return 0, 0
        body = response.json()
        return int(body["quantity"]), int(body["version"])

    def seed(self, sku: str, quantity: int) -> None:
        response = self.http.put(
            f"{self.central.base_url}/_sim/inventory/{sku}",
            json={"quantity": quantity},
            headers=self.central.admin_headers,
        )
        assert response.status_code == 200, response.text

    def faults(self, **knobs: Any) -> None:
        response = self.http.put(
            f"{self.central.base_url}/_sim/faults", json=knobs, headers=self.central.admin_headers
        )
        assert response.status_code == 200, response.text

    def rotate_key(self) -> None:
        response = self.http.post(
            f"{self.central.base_url}/_sim/rotate-signing-key", headers=self.central.admin_headers
        )
        assert response.status_code == 200, response.text

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.http.get(
                f"{self.central.base_url}/_sim/journal",
                params={"after_seq": after, "limit": 10_000},
                headers=self.central.admin_headers,
            ).json()
            entries.extend(page["entries"])
            if not page["entries"]:
                return entries
            after = page["next_after_seq"]

    def assert_applied_exactly_once(self, operation_ids: list[str]) -> None:
        applied = [e["operation_id"] for e in self.journal() if e["operation_id"] in operation_ids]
        assert sorted(applied) == sorted(operation_ids), "each change applied exactly once"

    def assert_local_equals_central_plus_pending(self, sku: str) -> None:
        item = self.item(sku)
        quantity, version = self.central_item(sku)
        assert item["central_version"] == version, item
        assert item["quantity"] == quantity + item["pending_delta"], (item, quantity)

    # processes
    def start_worker(self, name: str = "worker", **overrides: str) -> ManagedProcess:
        """Start a worker (stopping the current one), with extra environment if given."""
        if self.worker is not None:
            self.worker.stop()
        self.worker = start_worker({**self.env, **overrides}, self.log_dir, name)
        return self.worker

    def clear_faults(self) -> None:
        response = self.http.delete(
            f"{self.central.base_url}/_sim/faults", headers=self.central.admin_headers
        )
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        for process in [self.worker, *self.extra]:
            if process is not None:
                process.stop()
        self.api.process.stop()
        self.central.stop()
        self.http.close()
        try:
            delete_queue(self.broker_url, self.env["STORE_SYNC_QUEUE"])
        except Exception as exc:  # the broker may be down after a restart test
            print(f"could not delete the test queue: {exc!r}")


def start_stack(tmp_path: Path, broker_url: str, *, worker: bool = True, **overrides: str) -> Stack:
    """central_sim + store API + (optionally) a worker, started side by side, then awaited."""
    central_env, admin_token, services = sim_env(tmp_path)
    central_port, api_port = free_port(), free_port()
    log_dir = tmp_path / "logs"
    central_process = ManagedProcess(
        "central_sim",
        uvicorn_argv("central_sim.main:app", central_port),
        env=central_env,
        log_dir=log_dir,
    ).start()
    central = CentralSim(central_process, f"http://127.0.0.1:{central_port}", admin_token, services)
    env = store_env_for(
        tmp_path / "store.db",
        broker_url=broker_url,
        central_url=central.base_url,
        secret=services["inventory-service"],
        **overrides,
    )
    api_process = ManagedProcess(
        "store-api", uvicorn_argv("store_service.main:app", api_port), env=env, log_dir=log_dir
    ).start()
    api = StoreApi(api_process, f"http://127.0.0.1:{api_port}", tmp_path / "store.db", env)
    stack = Stack(tmp_path, broker_url, central, api, None, env)
    try:
        if worker:
            stack.worker = launch_worker(env, log_dir)
        wait_http_ok(f"{central.base_url}/health", central_process)
        wait_http_ok(f"{api.base_url}/v1/local/sync/summary", api_process)
        if stack.worker is not None:
            _wait_ready_after(stack.worker, 0)
    except BaseException:
        stack.stop()
        raise
    return stack


def store_env_for(
    database: Path, *, broker_url: str, central_url: str, secret: str, **overrides: str
) -> dict[str, str]:
    """A store process's environment for the stack, with short timeouts and backoff."""
    defaults = {
        "STORE_BROKER_URL": broker_url,
        "STORE_SYNC_QUEUE": f"store.sync.test-{uuid.uuid4().hex[:10]}",
        "STORE_CENTRAL_URL": central_url,
        "STORE_CENTRAL_SERVICE_NAME": "inventory-service",
        "STORE_CENTRAL_SERVICE_SECRET": secret,
        "STORE_CENTRAL_CONNECT_TIMEOUT_SECONDS": "1",
        "STORE_CENTRAL_READ_TIMEOUT_SECONDS": "3",
        "STORE_BACKOFF_BASE_SECONDS": "0.2",
        "STORE_BACKOFF_CAP_SECONDS": "1",
        "STORE_SYNC_LEASE_SECONDS": "5",
        "STORE_ALLOW_NEGATIVE_STOCK": "true",
        "STORE_LOG_JSON": "false",
        "STORE_LOG_LEVEL": "INFO",
    }
    return store_env(database, **{**defaults, **overrides})
