"""Sync routes in-process: trigger (filesystem broker / broker down), refresh, operator actions."""

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from harness.processes import free_port
from store_service.api.app import create_app
from store_service.api.deps import StoreRuntime
from store_service.sync.central import CentralClient
from store_service.sync.publisher import SyncPublisher
from tests.support.store_db import make_settings


def _central_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/auth/token":
        return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
    if request.url.path == "/v1/inventory/SKU-1":
        return httpx.Response(200, json={"sku": "SKU-1", "quantity": 40, "version": 9})
    if request.url.path == "/v1/inventory/DOWN":
        return httpx.Response(503)
    return httpx.Response(404)


def _client(tmp_path: Path, **overrides: object) -> Iterator[TestClient]:
    settings = make_settings(tmp_path / "store.db", allow_negative_stock=True, **overrides)
    with TestClient(create_app(settings)) as client:
        runtime: StoreRuntime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.central.close()
        runtime.central = CentralClient.from_settings(
            settings, transport=httpx.MockTransport(_central_handler)
        )
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _update(client: TestClient, sku: str, delta: int, operation_id: str) -> None:
    response = client.post(
        f"/v1/local/inventory/{sku}/update", json={"delta": delta, "operation_id": operation_id}
    )
    assert response.status_code == 200, response.text


def test_trigger_queues_a_sync_and_reports_pending(client: TestClient, tmp_path: Path) -> None:
    _update(client, "SKU-1", 3, "op-1")
    response = client.post("/v1/local/sync/trigger")
    assert response.status_code == 202
    assert response.json()["pending_count"] == 1
    queued = list((tmp_path / "broker" / "queue").iterdir())
    assert len(queued) == 1
    assert response.json()["task_id"] in queued[0].read_text()


def test_trigger_with_the_broker_down_is_a_503_with_retry_after(tmp_path: Path) -> None:
    for client in _client(tmp_path, broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//"):
        _update(client, "SKU-1", 3, "op-1")
        response = client.post("/v1/local/sync/trigger")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/local/sync/status/op-1").json()["status"] == "pending"


def test_refresh_adopts_centrals_stock_under_pending_changes(client: TestClient) -> None:
    _update(client, "SKU-1", -2, "op-1")
    response = client.post("/v1/local/inventory/SKU-1/refresh")
    assert response.status_code == 200
    item = response.json()
    assert (item["central_quantity"], item["central_version"]) == (40, 9)
    assert (item["quantity"], item["pending_delta"]) == (38, -2)
    assert item["last_synced_at"] is not None


def test_refresh_of_a_sku_central_never_saw_is_zero(client: TestClient) -> None:
    item = client.post("/v1/local/inventory/NEW-1/refresh").json()
    assert (item["quantity"], item["central_quantity"], item["central_version"]) == (0, 0, 0)


def test_refresh_with_central_down_is_a_503_and_changes_nothing(client: TestClient) -> None:
    _update(client, "DOWN", 5, "op-1")
    before = client.get("/v1/local/inventory/DOWN").json()
    response = client.post("/v1/local/inventory/DOWN/refresh")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert client.get("/v1/local/inventory/DOWN").json() == before


def _park(client: TestClient, operation_id: str) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.writer.run_blocking(
        lambda conn: conn.execute(
            "UPDATE changes SET status = 'conflict', resolution = 'manual' WHERE operation_id = ?",
            (operation_id,),
        )
    )


def test_operator_retry_sends_a_parked_change_again(client: TestClient) -> None:
    _update(client, "SKU-1", 3, "op-1")
    _park(client, "op-1")
    response = client.post("/v1/local/changes/op-1/retry")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)


def test_operator_discard_drops_the_delta_from_the_local_view(client: TestClient) -> None:
    client.post("/v1/local/inventory/SKU-1/refresh")
    _update(client, "SKU-1", 3, "op-1")
    _park(client, "op-1")
    response = client.post("/v1/local/changes/op-1/discard")
    assert response.status_code == 200
    assert response.json()["status"] == "discarded"
    item = client.get("/v1/local/inventory/SKU-1").json()
    assert (item["quantity"], item["pending_count"]) == (40, 0)


def test_operator_actions_need_a_parked_change(client: TestClient) -> None:
    _update(client, "SKU-1", 3, "op-1")
    response = client.post("/v1/local/changes/op-1/discard")
    assert response.status_code == 409
    assert response.json()["current_status"] == "pending"
    assert client.post("/v1/local/changes/nope/retry").status_code == 404


def test_summary_counts_changes_by_state(client: TestClient) -> None:
    _update(client, "SKU-1", 3, "op-1")
    _update(client, "SKU-1", 1, "op-2")
    _park(client, "op-2")
    summary = client.get("/v1/local/sync/summary").json()
    assert summary["counts"]["pending"] == 1
    assert summary["counts"]["conflict"] == 1
    assert summary["oldest_pending_age_seconds"] >= 0
    assert summary["auth_failed"] is None


def test_openapi_declares_the_sync_routes_and_their_problems(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    trigger = spec["paths"]["/v1/local/sync/trigger"]["post"]["responses"]
    assert {"202", "503"} <= set(trigger)
    assert "409" in spec["paths"]["/v1/local/changes/{operation_id}/retry"]["post"]["responses"]
    json.dumps(spec)


class RecordingPublisher(SyncPublisher):
    """The real debounce; publishes are recorded (when) instead of sent to a broker."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent: list[float] = []

    def _send(self, deadline: float) -> str:
        self.sent.append(time.monotonic())
        return f"task-{len(self.sent)}"


async def _until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 (a condition another task sets, not an event)
            await asyncio.sleep(0.01)


async def test_sync_soon_publishes_once_per_window_after_the_delay(tmp_path: Path) -> None:
    publisher = RecordingPublisher(make_settings(tmp_path / "store.db", sync_soon_seconds=0.3))
    try:
        started = time.monotonic()
        for _ in range(5):
            publisher.notify_change()
        await _until(lambda: publisher.sent and publisher._soon and publisher._soon.done())
        assert len(publisher.sent) == 1
        assert publisher.sent[0] - started >= 0.3
        publisher.notify_change()  # a change after the window opens the next one
        await _until(lambda: len(publisher.sent) == 2)
    finally:
        await publisher.close()


async def test_without_sync_soon_a_change_publishes_nothing(tmp_path: Path) -> None:
    publisher = RecordingPublisher(make_settings(tmp_path / "store.db"))
    try:
        publisher.notify_change()
        assert publisher._soon is None
        assert publisher.sent == []
    finally:
        await publisher.close()
