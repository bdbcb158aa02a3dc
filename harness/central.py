"""central_sim for the harness: its environment on fresh files with random secrets, starting
it as a real process, and its control API (`/_sim`, admin token) as a typed client."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.commands import CENTRAL_APP, uvicorn_argv
from harness.processes import Process, free_port, http_ok, wait_until

PAGE = 10_000
PREFIX = "CENTRAL_SIM_"
SERVICE_NAMES = ("inventory-service", "order-service")
"""The two identities of the seed: the store syncs as the first, the competing writer is the
second."""
START_TIMEOUT_SECONDS = 90.0  # imports take seconds on a busy 2-core machine


@dataclass(frozen=True)
class CentralEnv:
    """What a simulator is started with, and what its clients need to know."""

    env: dict[str, str]
    admin_token: str
    services: dict[str, str]  # name -> secret


def central_env(
    workdir: Path, *, services: Sequence[str] = SERVICE_NAMES, **overrides: object
) -> CentralEnv:
    """central_sim on `workdir/central.db` with a random secret for each of `services`;
    `overrides` become variables (the `CENTRAL_SIM_` prefix is added when missing)."""
    secrets_by_name = {name: secrets.token_urlsafe(32) for name in services}
    env = {
        "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{workdir / 'central.db'}",
        "CENTRAL_SIM_JWT_SECRET": secrets.token_urlsafe(48),
        "CENTRAL_SIM_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "CENTRAL_SIM_SERVICES": json.dumps(secrets_by_name),
        "CENTRAL_SIM_SERVICES_FILE": "",  # ignore a developer's .env pointing at a file
        "CENTRAL_SIM_LOG_LEVEL": "WARNING",
    }
    for key, value in overrides.items():
        env[key if key.startswith(PREFIX) else PREFIX + key] = str(value)
    return CentralEnv(env, env["CENTRAL_SIM_ADMIN_TOKEN"], json.loads(env["CENTRAL_SIM_SERVICES"]))


@dataclass
class CentralSim:
    """A running simulator process and how to reach it."""

    process: Process
    base_url: str
    admin_token: str
    services: dict[str, str]

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def token(self, service: str = SERVICE_NAMES[0]) -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"service_name": service, "service_secret": self.services[service]},
            timeout=5.0,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def auth_headers(self, service: str = SERVICE_NAMES[0]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service)}"}

    def admin(self) -> SimAdmin:
        return SimAdmin(self.base_url, self.admin_token)

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_sim/reset", headers=self.admin_headers, timeout=10.0)

    def wait_ready(self) -> None:
        wait_until(
            "central_sim",
            http_ok(f"{self.base_url}/health"),
            timeout=START_TIMEOUT_SECONDS,
            process=self.process,
        )

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) and start again: same port, file and secrets."""
        if kill:
            self.process.kill()
        else:
            self.process.stop()
        self.process.start()
        self.wait_ready()

    def stop(self) -> None:
        self.process.stop()


def launch_central(
    workdir: Path,
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    services: Sequence[str] = SERVICE_NAMES,
    **overrides: object,
) -> CentralSim:
    """Start central_sim (on `port`, or a free one) without waiting; see `CentralSim.wait_ready`.
    `services`: the identities it knows (a fleet gives one per store)."""
    setup = central_env(workdir, services=services, **overrides)
    port = port or free_port()
    process = Process(
        f"central_sim-{port}",
        uvicorn_argv(CENTRAL_APP, port),
        env=setup.env,
        log_dir=log_dir or workdir / "logs",
    ).start()
    return CentralSim(process, f"http://127.0.0.1:{port}", setup.admin_token, setup.services)


def start_central(
    workdir: Path,
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    services: Sequence[str] = SERVICE_NAMES,
    **overrides: object,
) -> CentralSim:
    """Start central_sim and wait until /health answers."""
    sim = launch_central(workdir, port=port, log_dir=log_dir, services=services, **overrides)
    try:
        sim.wait_ready()
    except BaseException:
        sim.stop()
        raise
    return sim


class SimAdmin:
    """Seed, faults, key rotation, competing writer, journal and stock of one simulator."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=15.0,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def seed(self, sku: str, quantity: int) -> None:
        self._call("PUT", f"/_sim/inventory/{sku}", json={"quantity": quantity})

    def set_faults(self, knobs: Mapping[str, object]) -> None:
        self._call("PUT", "/_sim/faults", json=dict(knobs))

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def rotate_key(self) -> None:
        self._call("POST", "/_sim/rotate-signing-key")

    def revoke(self, service: str) -> None:
        """Central refuses `service`'s secret and every token it holds (401) until `restore`."""
        self._call("POST", f"/_sim/services/{service}/revoke")

    def restore(self, service: str) -> None:
        self._call("DELETE", f"/_sim/services/{service}/revoke")

    def start_competing(
        self, skus: list[str], *, rate: float, min_delta: int, max_delta: int, seconds: float
    ) -> None:
        body = {
            "rate_per_second": rate,
            "skus": skus,
            "min_delta": min_delta,
            "max_delta": max_delta,
            "max_seconds": seconds,
        }
        self._call("POST", "/_sim/competing-writer", json=body)

    def stop_competing(self) -> dict[str, Any]:
        return dict(self._call("DELETE", "/_sim/competing-writer"))

    def journal(self) -> list[dict[str, Any]]:
        return self.journal_since(0)

    def journal_since(self, after_seq: int) -> list[dict[str, Any]]:
        """Journal entries with seq > `after_seq`, oldest first."""
        entries: list[dict[str, Any]] = []
        after = after_seq
        while True:
            page = self._call("GET", "/_sim/journal", params={"after_seq": after, "limit": PAGE})
            entries.extend(page["entries"])
            if len(page["entries"]) < PAGE:
                return entries
            after = page["next_after_seq"]

    def journal_tail(self) -> int:
        """The last journal seq so far (0 when empty): a mark for `journal_since`."""
        after = 0
        while True:
            page = self._call("GET", "/_sim/journal", params={"after_seq": after, "limit": PAGE})
            if len(page["entries"]) < PAGE:
                return int(page["next_after_seq"])
            after = page["next_after_seq"]

    def stock(self) -> dict[str, int]:
        quantities: dict[str, int] = {}
        params: dict[str, Any] = {"limit": PAGE}
        while True:
            page = self._call("GET", "/_sim/inventory", params=params)
            quantities.update({item["sku"]: int(item["quantity"]) for item in page["items"]})
            if page["next_after_sku"] is None:
                return quantities
            params["after_sku"] = page["next_after_sku"]

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_sim/stats"))
