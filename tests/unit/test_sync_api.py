"""Sync routes in-process: trigger (filesystem broker / broker down), refresh, operator actions."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from store_service.api.app import create_app
from store_service.api.deps import StoreRuntime
from store_service.api.routes.sync import (
    CENTRAL,
    notify_change,
    start_sync_wiring,
    stop_sync_wiring,
)
from store_service.sync.central import CentralClient
from tests.support.processes import free_port
from tests.support.sync_fakes import make_settings


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
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.extras[CENTRAL] = CentralClient.from_settings(
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


async def test_sync_soon_enqueues_one_run_per_window(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store.db", sync_soon_seconds=1.0)
    runtime = StoreRuntime(settings=settings, writer=None, reader=None)  # type: ignore[arg-type]
    await start_sync_wiring(runtime)
    try:
        for _ in range(5):
            notify_change(runtime)
        await asyncio.sleep(0.2)
        queue = tmp_path / "broker" / "queue"
        assert list(queue.iterdir()) == [], "published before the debounce window ended"
        # Generous bound: the first publish imports and connects kombu, slow on a busy machine.
        for _ in range(300):
            await asyncio.sleep(0.1)
            if list(queue.iterdir()):
                break
        await asyncio.sleep(0.5)
        assert len(list(queue.iterdir())) == 1
    finally:
        await stop_sync_wiring(runtime)
