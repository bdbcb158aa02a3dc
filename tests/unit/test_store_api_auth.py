"""Store API keys in-process: every refusal, both header forms, open endpoints, OpenAPI."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from store_service.api.app import create_app
from store_service.api.auth import ApiKeys
from tests.support.store_db import make_settings

KEYS = ("till-key-0123456789", "backoffice-key-9876543210")
PROBLEM = "application/problem+json"
WRITES = [
    ("POST", "/v1/local/inventory/SKU-1/update"),
    ("POST", "/v1/local/inventory/SKU-1/refresh"),
    ("POST", "/v1/local/sync/trigger"),
    ("POST", "/v1/local/changes/op-1/retry"),
    ("POST", "/v1/local/changes/op-1/discard"),
]
READS = [
    ("GET", "/v1/local/inventory/SKU-1"),
    ("GET", "/v1/local/inventory"),
    ("GET", "/v1/local/sync/status/op-1"),
    ("GET", "/v1/local/changes"),
    ("GET", "/v1/local/sync/summary"),
]


def _client(tmp_path: Path, **overrides: object) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path / "store.db", api_keys=frozenset(SecretStr(k) for k in KEYS), **overrides
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _update_body() -> dict[str, object]:
    return {"delta": 1, "operation_id": str(uuid.uuid4())}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"].endswith("/unauthorized")
    for key in KEYS:
        assert key not in response.text


@pytest.mark.parametrize(("method", "path"), WRITES + READS)
def test_every_v1_route_refuses_a_request_without_a_key(
    client: TestClient, method: str, path: str
) -> None:
    assert_unauthorized(client.request(method, path, json=_update_body()))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "not-a-key"},
        {"Authorization": f"Bearer {KEYS[0]}x"},
        {"Authorization": f"Basic {KEYS[0]}"},  # right key, wrong scheme
        {"Authorization": f"Bearer {KEYS[0][:-1]}"},  # a prefix is not the key
        {"Authorization": "Bearer "},
    ],
    ids=["wrong-bearer", "wrong-header", "longer", "basic-scheme", "prefix", "empty"],
)
def test_a_wrong_key_is_refused_and_changes_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/v1/local/inventory/SKU-1/update", json=_update_body(), headers=headers)
    assert_unauthorized(response)
    read = client.get("/v1/local/inventory/SKU-1", headers={"X-API-Key": KEYS[0]})
    assert read.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {KEYS[0]}"}, {"X-API-Key": KEYS[1]}],
    ids=["bearer", "x-api-key"],
)
def test_a_right_key_is_accepted_in_either_header(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/v1/local/inventory/SKU-1/update", json=_update_body(), headers=headers)
    assert response.status_code == 200, response.text
    assert client.get("/v1/local/inventory/SKU-1", headers=headers).json()["quantity"] == 1


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_docs_and_openapi_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/health/live", "/health/ready", "/metrics"])
def test_health_and_metrics_need_no_key(client: TestClient, path: str) -> None:
    # Only /v1/local/* is behind the key; probes and scrapers must never need one.
    response = client.get(path)
    assert response.status_code != 401
    assert "www-authenticate" not in response.headers


def test_anonymous_reads_let_gets_through_but_never_writes(tmp_path: Path) -> None:
    for client in _client(tmp_path, api_allow_anonymous_reads=True):
        for method, path in READS:
            assert client.request(method, path).status_code != 401, path
        for method, path in WRITES:
            assert_unauthorized(client.request(method, path, json=_update_body()))


def test_openapi_declares_the_schemes_and_401_on_secured_operations(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKeyBearer", "ApiKeyHeader"}
    for path, item in schema["paths"].items():
        for operation in item.values():
            if path.startswith("/v1/local/"):
                assert operation["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
                assert PROBLEM in operation["responses"]["401"]["content"]
            else:
                assert "security" not in operation


def test_without_keys_nothing_is_secured_or_declared(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "store.db"))) as client:
        response = client.post("/v1/local/inventory/SKU-1/update", json=_update_body())
        assert response.status_code == 200
        schema = client.get("/openapi.json").json()
        assert "securitySchemes" not in schema.get("components", {})


def test_keys_are_compared_over_every_configured_key() -> None:
    keys = ApiKeys([SecretStr("a" * 20), SecretStr("b" * 20)])
    assert keys.accepts("a" * 20)
    assert keys.accepts("b" * 20)
    assert not keys.accepts("a" * 19)
    assert not keys.accepts("")
    assert not ApiKeys([])


def test_keys_come_from_the_environment_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STORE_API_KEYS", " k1 , k2 ,")
    assert {k.get_secret_value() for k in make_settings(tmp_path / "s.db").api_keys} == {
        "k1",
        "k2",
    }
    monkeypatch.setenv("STORE_API_KEYS", '["k3"]')
    settings = make_settings(tmp_path / "s.db")
    assert {k.get_secret_value() for k in settings.api_keys} == {"k3"}
    assert "k3" not in repr(settings)
