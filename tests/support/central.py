"""Start central_sim as a real uvicorn subprocess on a free port with its own SQLite file.

    sim = start_central_sim(tmp_path)                  # or: process, url, admin, services = ...
    token = sim.token("inventory-service")
    sim = restart_central_sim(sim)                     # same port, same file, same secrets

Extra keyword arguments become environment variables; the `CENTRAL_SIM_` prefix is added when
missing (`start_central_sim(tmp_path, TOKEN_TTL_SECONDS="5")`).
"""

import json
import secrets
from pathlib import Path
from typing import NamedTuple

import httpx

from tests.support.processes import ManagedProcess, free_port, uvicorn_argv, wait_http_ok

PREFIX = "CENTRAL_SIM_"
SERVICE_NAMES = ("inventory-service", "order-service")


class CentralSim(NamedTuple):
    process: ManagedProcess
    base_url: str
    admin_token: str
    services: dict[str, str]

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def token(self, service: str = "inventory-service") -> str:
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"service_name": service, "service_secret": self.services[service]},
            timeout=5.0,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def auth_headers(self, service: str = "inventory-service") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service)}"}

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_sim/reset", headers=self.admin_headers, timeout=10.0)

    def stop(self) -> None:
        self.process.stop()


def sim_env(tmp_path: Path, **env: str) -> tuple[dict[str, str], str, dict[str, str]]:
    """The environment for a simulator on a fresh file under tmp_path, with random secrets."""
    services = {name: secrets.token_urlsafe(32) for name in SERVICE_NAMES}
    admin_token = secrets.token_urlsafe(24)
    base = {
        "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{tmp_path / 'central.db'}",
        "CENTRAL_SIM_JWT_SECRET": secrets.token_urlsafe(48),
        "CENTRAL_SIM_ADMIN_TOKEN": admin_token,
        "CENTRAL_SIM_SERVICES": json.dumps(services),
        "CENTRAL_SIM_SERVICES_FILE": "",  # ignore a developer's .env pointing at a file
        "CENTRAL_SIM_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        base[key if key.startswith(PREFIX) else PREFIX + key] = str(value)
    services = json.loads(base["CENTRAL_SIM_SERVICES"])
    return base, base["CENTRAL_SIM_ADMIN_TOKEN"], services


def start_central_sim(tmp_path: Path, *, port: int | None = None, **env: str) -> CentralSim:
    """Start central_sim (on `port`, or a free one) and wait until /health answers."""
    full_env, admin_token, services = sim_env(tmp_path, **env)
    port = port or free_port()
    process = ManagedProcess(
        f"central_sim-{port}",
        uvicorn_argv("central_sim.main:app", port),
        env=full_env,
        log_dir=tmp_path / "logs",
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base_url}/health", process)
    except BaseException:
        process.stop()
        raise
    return CentralSim(process, base_url, admin_token, services)


def restart_central_sim(sim: CentralSim, *, kill: bool = False) -> CentralSim:
    """Stop (or SIGKILL) the simulator and start it again on the same port, file and secrets."""
    if kill:
        sim.process.kill()
    else:
        sim.process.stop()
    process = ManagedProcess(
        sim.process.name,
        sim.process.argv,
        env=sim.process.env,
        log_dir=sim.process.log_path.parent,
    ).start()
    try:
        wait_http_ok(f"{sim.base_url}/health", process)
    except BaseException:
        process.stop()
        raise
    return sim._replace(process=process)
