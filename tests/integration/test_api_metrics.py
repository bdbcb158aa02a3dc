"""`GET /metrics` on a real store API process after real traffic: counters move exactly."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.store import StoreApi, start_store_api
from tests.support.metrics import Scrape, promtool_check_metrics, scrape

pytestmark = pytest.mark.integration

UPDATE = "/v1/local/inventory/{sku}/update"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreApi]:
    tmp: Path = tmp_path_factory.mktemp("api-metrics")
    # No broker or central needed: updates are local. A closed port keeps central "down".
    store = start_store_api(tmp, STORE_CENTRAL_URL="http://127.0.0.1:9", STORE_LOG_JSON="true")
    yield store
    store.process.stop()


def _update(client: httpx.Client, sku: str, body: dict) -> httpx.Response:
    return client.post(f"/v1/local/inventory/{sku}/update", json=body)


def test_update_outcomes_and_request_metrics_count_real_traffic(api: StoreApi) -> None:
    before = scrape(f"{api.base_url}/metrics")
    sku = f"SKU-M-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=api.base_url, timeout=10.0) as client:
        for i in range(4):
            assert (
                _update(client, sku, {"delta": 5, "operation_id": f"{sku}-{i}"}).status_code == 200
            )
        replay = _update(client, sku, {"delta": 5, "operation_id": f"{sku}-0"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert _update(client, sku, {"delta": -1000, "operation_id": f"{sku}-x"}).status_code == 409
        stale = {"delta": 1, "operation_id": f"{sku}-v", "version": 99}
        assert _update(client, sku, stale).status_code == 409
        stale["operation_id"] = f"{sku}-v2"
        assert _update(client, sku, stale).status_code == 409
        assert _update(client, sku, {"delta": 0, "operation_id": f"{sku}-z"}).status_code == 422
        assert (
            client.post(
                f"/v1/local/inventory/{sku}/update",
                content=b"{",
                headers={"content-type": "application/json"},
            ).status_code
            == 400
        )
        assert client.get(f"/v1/local/inventory/{sku}").status_code == 200
        assert client.get("/v1/local/inventory/NOPE-404").status_code == 404
    after = scrape(f"{api.base_url}/metrics")

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("store_updates_total", outcome="applied") == 4
    assert moved("store_updates_total", outcome="replayed") == 1
    assert moved("store_updates_total", outcome="insufficient_stock") == 1
    assert moved("store_updates_total", outcome="version_conflict") == 2
    assert moved("store_updates_total", outcome="invalid") == 2
    post = {"handler": UPDATE, "method": "POST"}
    assert moved("store_http_requests_total", status="2xx", **post) == 5
    assert moved("store_http_requests_total", status="4xx", **post) == 5
    assert moved("store_http_request_duration_seconds_count", status="2xx", **post) == 5
    read = {"handler": "/v1/local/inventory/{sku}", "method": "GET"}
    assert moved("store_http_requests_total", status="2xx", **read) == 1
    assert moved("store_http_requests_total", status="4xx", **read) == 1
    # Backlog figures come from the database at scrape time.
    assert moved("store_outbox_changes", state="pending") == 4
    assert after.value("store_outbox_oldest_pending_age_seconds") > 0
    assert after.value("store_sync_auth_failed") == 0


def test_metrics_are_labelled_by_route_template_never_by_raw_path(api: StoreApi) -> None:
    with httpx.Client(base_url=api.base_url, timeout=10.0) as client:
        client.get("/no/such/path-1")
        client.get("/health/live")
    text = scrape(f"{api.base_url}/metrics").text
    assert "/no/such/path-1" not in text
    assert 'handler="/health' not in text
    assert 'handler="/metrics"' not in text


def test_exposition_passes_promtool_check_metrics(api: StoreApi) -> None:
    with httpx.Client(base_url=api.base_url, timeout=10.0) as client:
        _update(client, "SKU-PROMTOOL", {"delta": 1, "operation_id": uuid.uuid4().hex})
    exposition: Scrape = scrape(f"{api.base_url}/metrics")
    promtool_check_metrics(exposition.text)
