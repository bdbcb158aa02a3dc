"""Revoking a service identity (`/_sim/services/{name}/revoke`): its secret and the tokens it
already holds are refused with 401 problems, other identities are untouched, restore undoes it."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central_sim.main import create_app
from tests.support.central_app import ADMIN, SECRETS, assert_problem, auth, sim_settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(sim_settings(tmp_path))) as test_client:
        test_client.put("/_sim/inventory/SKU-1", json={"quantity": 50}, headers=ADMIN)
        yield test_client


def _adjust(client: TestClient, headers: dict[str, str], key: str) -> int:
    response = client.post(
        "/v1/inventory/SKU-1/adjust",
        json={"sku": "SKU-1", "delta": -1},
        headers={**headers, "Idempotency-Key": key},
    )
    return response.status_code


def test_revoked_identity_loses_its_tokens_and_its_secret_until_restored(
    client: TestClient,
) -> None:
    store, other = auth(client), auth(client, "order-service")
    assert _adjust(client, store, "k-1") == 200

    revoked = client.post("/_sim/services/inventory-service/revoke", headers=ADMIN)
    assert revoked.json() == {"service": "inventory-service", "revoked": True}

    assert_problem(client.post("/v1/inventory/SKU-1/adjust", headers=store), 401, "invalid-token")
    token = client.post(
        "/auth/token",
        json={"service_name": "inventory-service", "service_secret": SECRETS["inventory-service"]},
    )
    assert_problem(token, 401, "invalid-credentials")
    assert _adjust(client, other, "k-2") == 200  # only the revoked identity stops

    restored = client.delete("/_sim/services/inventory-service/revoke", headers=ADMIN)
    assert restored.json()["revoked"] is False
    assert _adjust(client, auth(client), "k-3") == 200
    stock = client.get("/_sim/inventory", headers=ADMIN).json()["items"][0]["quantity"]
    assert stock == 47  # three applied adjustments, none while revoked


def test_revoking_an_unknown_identity_is_a_404_problem(client: TestClient) -> None:
    response = client.post("/_sim/services/nobody/revoke", headers=ADMIN)
    assert_problem(response, 404, "unknown-service")
