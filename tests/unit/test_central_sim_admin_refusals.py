"""Every /_sim route refuses a request without the admin token: missing, wrong, wrong scheme,
and a service token in its place; the refusal never echoes what was presented."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central_sim.main import create_app
from tests.support.central_app import auth, sim_settings

ADMIN_ROUTES = [
    ("PUT", "/_sim/inventory/SKU-1", {"quantity": 5}),
    ("GET", "/_sim/inventory", None),
    ("POST", "/_sim/reset", None),
    ("GET", "/_sim/faults", None),
    ("PUT", "/_sim/faults", {"error_rate": 1.0}),
    ("DELETE", "/_sim/faults", None),
    ("POST", "/_sim/rotate-signing-key", None),
    ("GET", "/_sim/competing-writer", None),
    ("POST", "/_sim/competing-writer", {"rate_per_second": 1, "skus": ["SKU-1"]}),
    ("DELETE", "/_sim/competing-writer", None),
    ("GET", "/_sim/journal", None),
    ("GET", "/_sim/stats", None),
    ("POST", "/_sim/services/inventory-service/revoke", None),
    ("DELETE", "/_sim/services/inventory-service/revoke", None),
]
WRONG = {
    "missing": {},
    "wrong-token": {"Authorization": "Bearer admin-tokeN"},
    "prefix": {"Authorization": "Bearer admin-toke"},
    "basic-scheme": {"Authorization": "Basic admin-token"},
    "no-scheme": {"Authorization": "admin-token"},
    "empty-bearer": {"Authorization": "Bearer "},
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("central")
    with TestClient(create_app(sim_settings(tmp))) as test_client:
        yield test_client


@pytest.mark.parametrize("kind", list(WRONG))
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_route_refuses_without_the_admin_token(
    client: TestClient, method: str, path: str, body: dict | None, kind: str
) -> None:
    response = client.request(method, path, json=body, headers=WRONG[kind])
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"].endswith("/invalid-admin-token")
    assert "admin-toke" not in response.json()["detail"]


def test_a_service_token_is_not_an_admin_token(client: TestClient) -> None:
    response = client.post("/_sim/reset", headers=auth(client))
    assert response.status_code == 401


def test_refused_admin_writes_change_nothing(client: TestClient) -> None:
    admin = {"Authorization": "Bearer admin-token"}
    before = client.get("/_sim/faults", headers=admin).json()
    client.put("/_sim/faults", json={"error_rate": 1.0}, headers=WRONG["basic-scheme"])
    client.put("/_sim/inventory/SKU-9", json={"quantity": 5}, headers=WRONG["wrong-token"])
    assert client.get("/_sim/faults", headers=admin).json() == before
    assert client.get("/_sim/journal?sku=SKU-9", headers=admin).json()["entries"] == []
