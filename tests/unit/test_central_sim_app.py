"""The app in-process (no sockets): auth failures, bulk-sync per-item results, problems, limits."""

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from central_sim.config import ConfigError
from central_sim.main import create_app
from tests.support.central_app import ADMIN, assert_problem, auth, sim_settings
from tests.support.clock import Clock

with warnings.catch_warnings():  # starlette warns about httpx at import; nothing to act on here
    warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
    from fastapi.testclient import TestClient


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(sim_settings(tmp_path, max_batch_items=10))) as test_client:
        yield test_client


def test_wrong_credentials_get_a_401_problem(client: TestClient) -> None:
    response = client.post(
        "/auth/token", json={"service_name": "inventory-service", "service_secret": "nope"}
    )
    assert_problem(response, 401, "/invalid-credentials")


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic abc", "Bearer", "Bearer not-a-jwt"],
)
def test_v1_without_a_valid_bearer_is_401_with_challenge(
    client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/v1/inventory/SKU-1", headers=headers)
    assert_problem(response, 401, "/invalid-token")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_of_a_service_no_longer_configured_is_refused(client: TestClient) -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "ghost",
            "aud": "central-inventory",
            "iss": "central-sim",
            "iat": now,
            "exp": now + 60,
            "jti": "x",
        },
        "j" * 48,
        algorithm="HS256",
    )
    response = client.get("/v1/inventory/SKU-1", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "/invalid-token")


def test_rotating_the_signing_key_invalidates_earlier_tokens(client: TestClient) -> None:
    old = auth(client)
    client.put("/_sim/inventory/SKU-1", json={"quantity": 1}, headers=ADMIN)
    assert client.get("/v1/inventory/SKU-1", headers=old).status_code == 200

    assert client.post("/_sim/rotate-signing-key", headers=ADMIN).status_code == 200

    assert_problem(client.get("/v1/inventory/SKU-1", headers=old), 401, "/invalid-token")
    assert client.get("/v1/inventory/SKU-1", headers=auth(client)).status_code == 200


def test_admin_api_needs_the_admin_token(client: TestClient) -> None:
    assert_problem(client.get("/_sim/faults"), 401, "/invalid-admin-token")
    bad = {"Authorization": "Bearer admin-tokem"}
    assert_problem(client.get("/_sim/faults", headers=bad), 401, "/invalid-admin-token")
    # A service token is not an admin token.
    assert_problem(client.get("/_sim/faults", headers=auth(client)), 401, "/invalid-admin-token")


def test_bulk_sync_gives_one_result_per_item_in_input_order(client: TestClient) -> None:
    client.put("/_sim/inventory/SKU-1", json={"quantity": 10}, headers=ADMIN)  # version 1
    items = [
        {"sku": "SKU-1", "delta": -2, "version": 1, "operation_id": "good"},
        {"sku": "SKU-1", "delta": -1, "version": 1, "operation_id": "stale"},
        {"sku": "SKU-1", "delta": -2, "version": 2, "operation_id": "good"},  # rebased resend
        {"sku": "SKU-1", "delta": 7, "operation_id": "good"},  # key reused, other payload
        {"sku": "bad sku!", "delta": 1, "operation_id": "bad-sku"},
        {"sku": "SKU-1", "delta": 0, "operation_id": "zero"},
        {"sku": "SKU-1", "delta": "1", "operation_id": "string-delta"},
        {"sku": "SKU-1", "delta": True, "operation_id": "bool-delta"},
        "not an object",
        {"sku": "SKU-1", "delta": -100, "operation_id": "too-much"},
    ]

    response = client.post("/v1/inventory/bulk-sync", json={"items": items}, headers=auth(client))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    summary = [(r["operation_id"], r["status"], r["reason"]) for r in results]
    assert summary == [
        ("good", "applied", None),
        ("stale", "conflict", None),
        ("good", "duplicate", None),
        ("good", "rejected", "idempotency_key_reused"),
        ("bad-sku", "rejected", "invalid_item"),
        ("zero", "rejected", "invalid_item"),
        ("string-delta", "rejected", "invalid_item"),
        ("bool-delta", "rejected", "invalid_item"),
        (None, "rejected", "invalid_item"),
        ("too-much", "rejected", "insufficient_stock"),
    ]
    assert (results[0]["quantity"], results[0]["version"]) == (8, 2)
    assert (results[1]["quantity"], results[1]["version"]) == (8, 2)
    assert (results[2]["quantity"], results[2]["version"]) == (8, 2)
    assert results[4]["quantity"] is None
    assert results[4]["sku"] == "bad sku!"


def test_duplicate_in_a_later_batch_returns_the_original_result(client: TestClient) -> None:
    headers = auth(client)
    first = [{"sku": "A", "delta": 5, "operation_id": "op-1"}]
    client.post("/v1/inventory/bulk-sync", json={"items": first}, headers=headers)
    client.post(
        "/v1/inventory/bulk-sync",
        json={"items": [{"sku": "A", "delta": 1, "operation_id": "op-2"}]},
        headers=headers,
    )

    again = client.post("/v1/inventory/bulk-sync", json={"items": first}, headers=headers)

    [result] = again.json()["results"]
    assert (result["status"], result["quantity"], result["version"]) == ("duplicate", 5, 1)


def test_idempotency_is_per_service(client: TestClient) -> None:
    item = [{"sku": "A", "delta": 5, "operation_id": "op-1"}]
    client.post("/v1/inventory/bulk-sync", json={"items": item}, headers=auth(client))

    other = client.post(
        "/v1/inventory/bulk-sync", json={"items": item}, headers=auth(client, "order-service")
    )

    assert other.json()["results"][0]["status"] == "applied"


def test_batch_over_the_limit_is_413_and_empty_batch_is_422(client: TestClient) -> None:
    headers = auth(client)
    items = [{"sku": "A", "delta": 1, "operation_id": f"op-{i}"} for i in range(11)]
    assert_problem(
        client.post("/v1/inventory/bulk-sync", json={"items": items}, headers=headers),
        413,
        "/batch-too-large",
    )
    assert_problem(
        client.post("/v1/inventory/bulk-sync", json={"items": []}, headers=headers),
        422,
        "/validation-error",
    )


def test_oversized_body_is_413_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/inventory/bulk-sync",
        content=b'{"items": ["' + b"x" * 2_000_000 + b'"]}',
        headers={**auth(client), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "/payload-too-large")


def test_adjust_needs_a_bounded_idempotency_key(client: TestClient) -> None:
    headers = auth(client)
    body = {"sku": "A", "delta": 1}
    assert_problem(
        client.post("/v1/inventory/A/adjust", json=body, headers=headers),
        400,
        "/missing-idempotency-key",
    )
    assert_problem(
        client.post(
            "/v1/inventory/A/adjust", json=body, headers={**headers, "Idempotency-Key": "k" * 129}
        ),
        400,
        "/invalid-idempotency-key",
    )


def test_adjust_insufficient_stock_is_409_with_current_state(client: TestClient) -> None:
    client.put("/_sim/inventory/A", json={"quantity": 2}, headers=ADMIN)
    response = client.post(
        "/v1/inventory/A/adjust",
        json={"sku": "A", "delta": -3},
        headers={**auth(client), "Idempotency-Key": "k1"},
    )
    body = assert_problem(response, 409, "/insufficient-stock")
    assert (body["current_quantity"], body["current_version"]) == (2, 1)


@pytest.mark.parametrize(
    ("method", "path", "status", "suffix"),
    [
        ("get", "/nowhere", 404, "/not-found"),
        ("delete", "/health", 405, "/method-not-allowed"),
        ("get", "/v1/inventory/bad%20sku", 422, "/validation-error"),
        ("get", "/v1/inventory/NEVER-SEEN", 404, "/unknown-sku"),
    ],
)
def test_every_error_is_a_problem(
    client: TestClient, method: str, path: str, status: int, suffix: str
) -> None:
    response = client.request(method, path, headers=auth(client))
    assert_problem(response, status, suffix)


def test_validation_problem_never_echoes_the_secret(client: TestClient) -> None:
    response = client.post(
        "/auth/token", json={"service_name": "", "service_secret": "hunter2-secret"}
    )
    assert_problem(response, 422, "/validation-error")
    assert "hunter2" not in response.text


def test_openapi_declares_problem_json_for_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    adjust = spec["paths"]["/v1/inventory/{sku}/adjust"]["post"]["responses"]
    for status in ("400", "401", "409", "422", "429", "502", "503"):
        assert "application/problem+json" in adjust[status]["content"], status
    assert "BulkItem" in spec["components"]["schemas"]


def test_journal_deltas_sum_to_stock(client: TestClient) -> None:
    headers = auth(client)
    client.put("/_sim/inventory/A", json={"quantity": 10}, headers=ADMIN)
    client.put("/_sim/faults", json={"conflict_next": {"A": 1}}, headers=ADMIN)
    items = [
        {"sku": "A", "delta": -3, "version": 1, "operation_id": "x"},  # injected conflict
        {"sku": "A", "delta": -3, "operation_id": "y"},
        {"sku": "B", "delta": 4, "operation_id": "z"},
    ]
    client.post("/v1/inventory/bulk-sync", json={"items": items}, headers=headers)
    client.put("/_sim/inventory/A", json={"quantity": 20}, headers=ADMIN)

    entries = client.get("/_sim/journal", headers=ADMIN).json()["entries"]
    stock = client.get("/_sim/inventory", headers=ADMIN).json()["items"]

    sums: dict[str, int] = {}
    for entry in entries:
        sums[entry["sku"]] = sums.get(entry["sku"], 0) + entry["delta"]
    assert sums == {row["sku"]: row["quantity"] for row in stock} == {"A": 20, "B": 4}
    assert [e["kind"] for e in entries] == ["seed", "competing", "adjust", "adjust", "seed"]


def test_idempotency_records_expire_after_retention(tmp_path: Path) -> None:
    clock = Clock()
    settings = sim_settings(tmp_path, idempotency_retention_seconds=60)
    with TestClient(create_app(settings, clock=clock)) as client:
        headers = auth(client)
        item = {"items": [{"sku": "A", "delta": 1, "operation_id": "op-1"}]}
        client.post("/v1/inventory/bulk-sync", json=item, headers=headers)
        clock.advance(61)
        headers = auth(client)  # the first token has expired meanwhile
        again = client.post("/v1/inventory/bulk-sync", json=item, headers=headers)
        assert again.json()["results"][0]["status"] == "applied"


def test_startup_fails_clearly_without_service_identities(tmp_path: Path) -> None:
    app = create_app(sim_settings(tmp_path, services=None))
    with pytest.raises(ConfigError, match="CENTRAL_SIM_SERVICES"), TestClient(app):
        pass


def test_jwt_secret_and_admin_token_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from central_sim.config import load_settings

    monkeypatch.delenv("CENTRAL_SIM_JWT_SECRET", raising=False)
    monkeypatch.delenv("CENTRAL_SIM_ADMIN_TOKEN", raising=False)
    monkeypatch.chdir("/")  # no .env to read
    with pytest.raises(ConfigError, match=r"CENTRAL_SIM_JWT_SECRET.*CENTRAL_SIM_ADMIN_TOKEN"):
        load_settings()


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.get("/v1/inventory/bulk-sync/x")
    assert response.status_code == 404
    response = client.put("/v1/inventory/bulk-sync", headers=auth(client))
    assert_problem(response, 405, "/method-not-allowed")
    assert response.headers["allow"] == "POST"
    response = client.delete("/v1/inventory/SKU-1", headers=auth(client))
    assert response.headers["allow"] == "GET"


def test_admin_bodies_are_strictly_typed(client: TestClient) -> None:
    assert_problem(
        client.put("/_sim/faults", json={"error_rate": "0.5"}, headers=ADMIN),
        422,
        "/validation-error",
    )
    assert_problem(
        client.put("/_sim/inventory/A", json={"quantity": "5"}, headers=ADMIN),
        422,
        "/validation-error",
    )
    # 5.0 is an integer in JSON Schema's eyes; accept it.
    assert client.put("/_sim/inventory/A", json={"quantity": 5.0}, headers=ADMIN).json() == {
        "sku": "A",
        "quantity": 5,
        "version": 1,
    }
