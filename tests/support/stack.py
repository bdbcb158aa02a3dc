"""The sync stack as real processes: central_sim, the store API, a Celery worker, beat.

    stack = start_stack(tmp_path, rabbitmq_url, STORE_CONFLICT_STRATEGY="manual")
    stack.update("SKU-1", 5); stack.trigger(); stack.wait_all_final()
    stack.stop()

Each stack gets its own SQLite files, its own central_sim, and its own sync queue
(`STORE_SYNC_QUEUE`), so stacks never steal each other's messages on a shared RabbitMQ; the
queue is deleted on `stop()`.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from harness.broker import delete_queue_quietly
from harness.central import CentralSim, launch_central
from harness.processes import Process, poll
from harness.store import (
    StoreApi,
    launch_store_api,
    launch_worker,
    private_queue,
    start_worker,
    store_env,
    wait_worker_ready,
)

T = TypeVar("T")

FINAL = {"synced", "rejected", "discarded"}


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float = 30.0, every: float = 0.2
) -> T:
    """Poll `probe` until it returns something truthy (and return it); an AssertionError after
    `timeout` seconds, so a test reads as a failed expectation."""
    try:
        return poll(what, probe, timeout=timeout, every=every)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


@dataclass
class Stack:
    tmp_path: Path
    broker_url: str
    central: CentralSim
    api: StoreApi
    worker: Process | None
    env: dict[str, str]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))
    extra: list[Process] = field(default_factory=list)
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
    def start_worker(self, name: str = "worker", **overrides: str) -> Process:
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
        # The broker may be down after a restart test.
        delete_queue_quietly(self.broker_url, self.env["STORE_SYNC_QUEUE"])


def start_stack(
    tmp_path: Path,
    broker_url: str,
    *,
    worker: bool = True,
    central_overrides: dict[str, Any] | None = None,
    **overrides: str,
) -> Stack:
    """central_sim + store API + (optionally) a worker, started side by side, then awaited.
    `overrides` are the store's variables, `central_overrides` central_sim's."""
    log_dir = tmp_path / "logs"
    central = launch_central(tmp_path, log_dir=log_dir, **(central_overrides or {}))
    env = store_env_for(
        tmp_path / "store.db",
        broker_url=broker_url,
        central_url=central.base_url,
        secret=central.services["inventory-service"],
        **overrides,
    )
    api = launch_store_api(tmp_path, env=env, log_dir=log_dir)
    stack = Stack(tmp_path, broker_url, central, api, None, env)
    try:
        if worker:
            stack.worker = launch_worker(env, log_dir)
        central.wait_ready()
        api.wait_ready()
        if stack.worker is not None:
            wait_worker_ready(stack.worker)
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
        "STORE_SYNC_QUEUE": private_queue(),
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
