"""central_sim as a real uvicorn process over HTTP: tokens, idempotent adjust, concurrency,
bulk-sync per-item results."""

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from harness.central import CentralSim

pytestmark = pytest.mark.integration


def seed(http: httpx.Client, sim: CentralSim, sku: str, quantity: int) -> int:
    response = http.put(
        f"/_sim/inventory/{sku}", json={"quantity": quantity}, headers=sim.admin_headers
    )
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def test_token_flow(sim: CentralSim, http: httpx.Client) -> None:
    refused = http.post(
        "/auth/token", json={"service_name": "inventory-service", "service_secret": "wrong"}
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")

    issued = http.post(
        "/auth/token",
        json={
            "service_name": "inventory-service",
            "service_secret": sim.services["inventory-service"],
        },
    )
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900

    seed(http, sim, "SKU-1", 3)
    assert http.get("/v1/inventory/SKU-1").status_code == 401
    read = http.get(
        "/v1/inventory/SKU-1", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert read.json() == {"sku": "SKU-1", "quantity": 3, "version": 1}


def test_adjust_replay_returns_same_body_marked_replayed(
    sim: CentralSim, http: httpx.Client
) -> None:
    version = seed(http, sim, "SKU-1", 10)
    headers = {**sim.auth_headers(), "Idempotency-Key": "op-replay"}
    body = {"sku": "SKU-1", "delta": -4, "version": version}

    first = http.post("/v1/inventory/SKU-1/adjust", json=body, headers=headers)
    replay = http.post("/v1/inventory/SKU-1/adjust", json=body, headers=headers)
    # Resent after a rebase (newer version): still the same operation, never applied twice.
    rebased = http.post(
        "/v1/inventory/SKU-1/adjust", json={**body, "version": version + 1}, headers=headers
    )

    assert first.status_code == 200
    assert first.json() == {
        "operation_id": "op-replay",
        "sku": "SKU-1",
        "status": "applied",
        "quantity": 6,
        "version": version + 1,
    }
    assert "idempotent-replayed" not in first.headers
    for again in (replay, rebased):
        assert again.status_code == 200
        assert again.json() == {**first.json(), "status": "duplicate"}
        assert again.headers["idempotent-replayed"] == "true"
    assert http.get("/v1/inventory/SKU-1", headers=headers).json()["quantity"] == 6


def test_adjust_same_key_different_payload_is_422(sim: CentralSim, http: httpx.Client) -> None:
    seed(http, sim, "SKU-1", 10)
    headers = {**sim.auth_headers(), "Idempotency-Key": "op-mismatch"}
    http.post("/v1/inventory/SKU-1/adjust", json={"sku": "SKU-1", "delta": -1}, headers=headers)

    mismatch = http.post(
        "/v1/inventory/SKU-1/adjust", json={"sku": "SKU-1", "delta": -2}, headers=headers
    )

    assert mismatch.status_code == 422
    assert mismatch.json()["type"] == "https://central-sim/problems/idempotency-key-reused"
    assert http.get("/v1/inventory/SKU-1", headers=headers).json()["quantity"] == 9


def test_adjust_stale_version_is_409_with_current_state(
    sim: CentralSim, http: httpx.Client
) -> None:
    version = seed(http, sim, "SKU-1", 10)
    headers = sim.auth_headers()
    http.post(
        "/v1/inventory/SKU-1/adjust",
        json={"sku": "SKU-1", "delta": 1},
        headers={**headers, "Idempotency-Key": "a"},
    )

    stale = http.post(
        "/v1/inventory/SKU-1/adjust",
        json={"sku": "SKU-1", "delta": 1, "version": version},
        headers={**headers, "Idempotency-Key": "b"},
    )

    assert stale.status_code == 409
    problem = stale.json()
    assert problem["type"] == "https://central-sim/problems/version-conflict"
    assert (problem["current_quantity"], problem["current_version"]) == (11, version + 1)


async def test_100_concurrent_adjusts_on_one_version_give_exactly_one_success(
    sim: CentralSim, http: httpx.Client
) -> None:
    version = seed(http, sim, "HOT", 1000)
    headers = sim.auth_headers()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=30.0, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/inventory/HOT/adjust",
                    json={"sku": "HOT", "delta": -1, "version": version},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                for _ in range(100)
            )
        )
        after = await client.get("/v1/inventory/HOT", headers=headers)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 99}, statuses
    assert after.json() == {
        "sku": "HOT",
        "quantity": 999,
        "version": version + 1,
    }


async def test_concurrent_duplicates_of_one_key_apply_once(
    sim: CentralSim, http: httpx.Client
) -> None:
    seed(http, sim, "HOT", 1000)
    headers = {**sim.auth_headers(), "Idempotency-Key": "same-op"}
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=30.0) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/inventory/HOT/adjust", json={"sku": "HOT", "delta": -1}, headers=headers
                )
                for _ in range(50)
            )
        )
        after = await client.get("/v1/inventory/HOT", headers=headers)

    assert Counter(r.json()["status"] for r in responses) == {"applied": 1, "duplicate": 49}
    assert after.json()["quantity"] == 999


def test_bulk_sync_mix_of_good_stale_duplicate_and_invalid_items(
    sim: CentralSim, http: httpx.Client
) -> None:
    v1 = seed(http, sim, "SKU-1", 10)
    v2 = seed(http, sim, "SKU-2", 5)
    headers = sim.auth_headers()
    http.post(
        "/v1/inventory/bulk-sync",
        json={"items": [{"sku": "SKU-2", "delta": 1, "version": v2, "operation_id": "earlier"}]},
        headers=headers,
    )
    items = [
        {"sku": "SKU-1", "delta": -2, "version": v1, "operation_id": "good-1"},
        {"sku": "SKU-2", "delta": -1, "version": v2, "operation_id": "stale"},
        {"sku": "SKU-2", "delta": 1, "version": v2 + 1, "operation_id": "earlier"},
        {"sku": "SKU-1", "delta": -1, "version": v1 + 1, "operation_id": "good-2"},
        {"sku": "", "delta": 1, "operation_id": "no-sku"},
        {"sku": "SKU-1", "delta": 1.5, "operation_id": "float-delta"},
        {"sku": "SKU-1", "delta": 1},
        {"sku": "NEW-SKU", "delta": 3, "version": 0, "operation_id": "new"},
    ]

    response = http.post("/v1/inventory/bulk-sync", json={"items": items}, headers=headers)

    assert response.status_code == 200, response.text
    got = [
        (r["operation_id"], r["status"], r["quantity"], r["version"], r["reason"])
        for r in response.json()["results"]
    ]
    assert got == [
        ("good-1", "applied", 8, v1 + 1, None),
        ("stale", "conflict", 6, v2 + 1, None),
        ("earlier", "duplicate", 6, v2 + 1, None),
        ("good-2", "applied", 7, v1 + 2, None),
        ("no-sku", "rejected", None, None, "invalid_item"),
        ("float-delta", "rejected", None, None, "invalid_item"),
        (None, "rejected", None, None, "invalid_item"),
        ("new", "applied", 3, 1, None),
    ]
    stats = http.get("/_sim/stats", headers=sim.admin_headers).json()
    assert stats["services"]["inventory-service"] == {
        "applied": 4,
        "duplicate": 1,
        "conflict": 1,
        "rejected": 3,
        "dropped_response": 0,
    }


def test_bulk_sync_of_500_items_is_applied_in_one_call(sim: CentralSim, http: httpx.Client) -> None:
    headers = sim.auth_headers()
    items = [
        {"sku": f"SKU-{i % 100}", "delta": 1, "operation_id": str(uuid.uuid4())} for i in range(500)
    ]
    http.post("/v1/inventory/bulk-sync", json={"items": items[:1]}, headers=headers)  # warm up

    response = http.post("/v1/inventory/bulk-sync", json={"items": items[1:]}, headers=headers)

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 499
    assert {r["status"] for r in results} == {"applied"}
    # Its speed is a benchmark's business, not a test's: python -m chaos fleet-ingest.


def test_health_and_metrics(sim: CentralSim, http: httpx.Client) -> None:
    assert http.get("/health").json()["status"] == "ok"
    http.post(
        "/v1/inventory/bulk-sync",
        json={"items": [{"sku": "M", "delta": 1, "operation_id": "m-1"}]},
        headers=sim.auth_headers(),
    )
    text = http.get("/metrics").text
    assert 'central_sim_writes_total{service="inventory-service",status="applied"}' in text
    assert "central_sim_http_requests_total" in text
