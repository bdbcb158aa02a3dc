"""central_sim's panel in-process: sign-in with the admin token, the knobs form (and its
refusals), revoke/restore a service, key rotation, the competing writer, escaping, CSRF."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central_sim import operations
from central_sim.main import create_app
from tests.support.central_app import ADMIN, SECRETS, auth, sim_settings

HTML = {"accept": "text/html"}
HTMX = {"hx-request": "true"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(sim_settings(tmp_path)), follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def signed_in(client: TestClient) -> str:
    """Sign in with the admin token; the panel's CSRF token."""
    form = client.get("/_sim/console/login", headers=HTML)
    response = client.post(
        "/_sim/console/login",
        data={"csrf_token": csrf_of(form.text), "credential": "admin-token"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/_sim/console"
    assert "HttpOnly" in response.headers["set-cookie"]
    assert "SameSite=strict" in response.headers["set-cookie"]
    page = client.get("/_sim/console", headers=HTML)
    assert page.status_code == 200
    return csrf_of(page.text)


def faults(client: TestClient) -> dict:
    return dict(client.get("/_sim/faults", headers=ADMIN).json())


def test_the_panel_needs_the_admin_token(client: TestClient) -> None:
    first = client.get("/_sim/console", headers=HTML)
    assert first.status_code == 303
    assert "/_sim/console/login" in first.headers["location"]
    assert first.headers["x-frame-options"] == "DENY"
    assert client.get("/_sim/console/fragments/live", headers=HTMX).status_code == 401
    form = client.get("/_sim/console/login", headers=HTML)
    refused = client.post(
        "/_sim/console/login", data={"csrf_token": csrf_of(form.text), "credential": "guess"}
    )
    assert refused.status_code == 401
    # A service's bearer token is not the admin token either.
    bearer = auth(client)["Authorization"].removeprefix("Bearer ")
    refused = client.post(
        "/_sim/console/login", data={"csrf_token": csrf_of(form.text), "credential": bearer}
    )
    assert refused.status_code == 401
    signed_in(client)
    live = client.get("/_sim/console/fragments/live", headers=HTMX)
    assert live.status_code == 200
    assert "Counters" in live.text
    assert "unsafe-inline" not in live.headers["content-security-policy"]


def test_the_knobs_form_sets_faults_and_refuses_bad_values(client: TestClient) -> None:
    token = signed_in(client)
    answer = client.post(
        "/_sim/console/faults",
        data={
            "csrf_token": token,
            "error_rate": "0.25",
            "latency_ms": "40",
            "conflict_sku": "SKU-1",
            "conflict_count": "2",
        },
        headers=HTMX,
    )
    assert answer.status_code == 200
    assert "faults set" in answer.text
    knobs = faults(client)
    assert (knobs["error_rate"], knobs["latency_ms"], knobs["conflict_next"]) == (
        0.25,
        40,
        {"SKU-1": 2},
    )
    for bad in ({"error_rate": "2"}, {"latency_ms": "soon"}, {"conflict_sku": "<b>"}):
        refused = client.post(
            "/_sim/console/faults", data={"csrf_token": token, **bad}, headers=HTMX
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("/validation-error")
        assert faults(client) == knobs, "a refused form changes nothing"
    forged = client.post("/_sim/console/faults/clear", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert faults(client) == knobs
    cleared = client.post("/_sim/console/faults/clear", data={"csrf_token": token})
    assert cleared.status_code == 303
    assert faults(client)["error_rate"] == 0.0
    assert faults(client)["conflict_next"] == {}


def test_revoke_and_restore_a_service(client: TestClient) -> None:
    token = signed_in(client)
    headers = auth(client)
    assert client.get("/v1/inventory/SKU-1", headers=headers).status_code in (200, 404)
    revoked = client.post(
        "/_sim/console/services/inventory-service/revoke", data={"csrf_token": token}
    )
    assert revoked.status_code == 303
    assert client.get("/v1/inventory/SKU-1", headers=headers).status_code == 401
    body = {"service_name": "inventory-service", "service_secret": SECRETS["inventory-service"]}
    assert client.post("/auth/token", json=body).status_code == 401
    assert auth(client, "order-service"), "other services are untouched"
    unknown = client.post("/_sim/console/services/nobody/revoke", data={"csrf_token": token})
    assert unknown.status_code == 404
    client.post("/_sim/console/services/inventory-service/restore", data={"csrf_token": token})
    assert client.post("/auth/token", json=body).status_code == 200


def test_revocation_survives_a_restart(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        token = signed_in(client)
        client.post("/_sim/console/services/order-service/revoke", data={"csrf_token": token})
    with TestClient(create_app(settings)) as client:
        body = {"service_name": "order-service", "service_secret": SECRETS["order-service"]}
        assert client.post("/auth/token", json=body).status_code == 401
        client.post("/_sim/reset", headers=ADMIN)
        assert client.post("/auth/token", json=body).status_code == 200, "reset restores"


def test_rotation_and_the_competing_writer(client: TestClient) -> None:
    token = signed_in(client)
    headers = auth(client)
    rotated = client.post(
        "/_sim/console/rotate-signing-key", data={"csrf_token": token}, headers=HTMX
    )
    assert rotated.status_code == 200
    assert "signing key rotated" in rotated.text
    assert client.get("/v1/inventory/SKU-1", headers=headers).status_code == 401
    client.put("/_sim/inventory/SKU-1", json={"quantity": 10}, headers=ADMIN)
    started = client.post(
        "/_sim/console/competing-writer/start",
        data={"csrf_token": token, "skus": "SKU-1", "rate_per_second": "5", "max_seconds": "30"},
        headers=HTMX,
    )
    assert started.status_code == 200
    assert "Stop the competing writer" in started.text
    assert client.get("/_sim/competing-writer", headers=ADMIN).json()["running"] is True
    bad = client.post(
        "/_sim/console/competing-writer/start",
        data={"csrf_token": token, "skus": "", "rate_per_second": "5"},
        headers=HTMX,
    )
    assert bad.status_code == 422
    stopped = client.post(
        "/_sim/console/competing-writer/stop", data={"csrf_token": token}, headers=HTMX
    )
    assert stopped.status_code == 200
    assert client.get("/_sim/competing-writer", headers=ADMIN).json()["running"] is False


def test_database_values_are_escaped(client: TestClient) -> None:
    signed_in(client)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]  # set by the lifespan
    operations.seed(runtime, sku="<img src=x onerror=alert(1)>", quantity=3)  # the API refuses it
    page = client.get("/_sim/console", headers=HTML)
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
