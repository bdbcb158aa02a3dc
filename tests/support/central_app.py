"""central_sim in-process (ASGI, no sockets) for unit tests: settings, tokens, assertions."""

import secrets
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from central_sim.config import Settings

SECRETS = {"inventory-service": secrets.token_urlsafe(32), "order-service": "o" * 40}
ADMIN = {"Authorization": "Bearer admin-token"}
PROBLEM = "application/problem+json"


def sim_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'central.db'}",
        "jwt_secret": SecretStr("j" * 48),
        "admin_token": SecretStr("admin-token"),
        "services": {k: SecretStr(v) for k, v in SECRETS.items()},
        "services_file": None,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]  # pydantic-settings takes these by name


def auth(client: TestClient, service: str = "inventory-service") -> dict[str, str]:
    response = client.post(
        "/auth/token", json={"service_name": service, "service_secret": SECRETS[service]}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_problem(response: Any, status: int, type_suffix: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(type_suffix)
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body
