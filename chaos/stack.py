"""One scenario's system under test: central_sim, two Toxiproxy proxies, store API, worker.

    worker ──STORE_CENTRAL_URL──▶ proxy `chaos-<run>-central` ──▶ central_sim
    API, worker ──STORE_BROKER_URL──▶ proxy `chaos-<run>-broker` ──▶ RabbitMQ :5672

Every run gets fresh SQLite files in its own folder, its own proxies on free ports (named by
run id, so concurrent runs and other users of the Toxiproxy server are left alone; we never
call Toxiproxy's global `reset`), and its own sync queue, deleted at the end.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kombu import Connection, Exchange, Queue

from chaos.processes import (
    REPO_ROOT,
    Process,
    celery_argv,
    free_port,
    http_ok,
    uvicorn_argv,
    wait_until,
)
from chaos.sim_admin import SimAdmin
from chaos.toxiproxy import Proxy, ToxiproxyClient

SERVICES = ("inventory-service", "order-service")
RABBITMQ_SCRIPT = REPO_ROOT / "scripts" / "services" / "rabbitmq.sh"


@dataclass
class Stack:
    workdir: Path
    broker_url: str  # the real broker, for setup and teardown only
    toxiproxy: ToxiproxyClient
    proxies: dict[str, Proxy]
    central: Process
    central_url: str
    sim: SimAdmin
    api: Process
    api_url: str
    env: dict[str, str]
    worker: Process | None = None
    worker_starts: int = field(default=0)

    # --- processes ------------------------------------------------------------------------

    def start_worker(self) -> None:
        self.launch_worker()
        self.wait_worker()

    def launch_worker(self) -> None:
        self.worker_starts += 1
        node = f"chaos-{uuid.uuid4().hex[:6]}@localhost"
        argv = celery_argv(
            "worker", "--pool=solo", "--without-mingle", "--without-gossip", "-n", node
        )
        self.worker = Process(
            f"worker-{self.worker_starts}", argv, env=self.env, log_dir=self.log_dir
        ).start()

    def wait_worker(self) -> None:
        worker = self.worker
        assert worker is not None
        wait_until(
            "the worker to be ready",
            lambda: "ready." in worker.log_tail(200),
            timeout=90,
            process=worker,
            every=0.2,
        )

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def start_api(self) -> None:
        self.api.start()
        self.wait_api()

    def wait_api(self) -> None:
        url = f"{self.api_url}/v1/local/inventory"
        wait_until("the store API", http_ok(url), timeout=90, process=self.api)

    def restart_central(self) -> None:
        """SIGKILL and start again: same port, file and secrets (state lives in SQLite)."""
        self.central.kill()
        self.central.start()
        self.wait_central()

    def wait_central(self) -> None:
        url = f"{self.central_url}/health"
        wait_until("central_sim", http_ok(url), timeout=90, process=self.central)

    def restart_rabbitmq(self) -> None:
        subprocess.run(["bash", str(RABBITMQ_SCRIPT), "restart"], check=True, timeout=300)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def stop(self) -> None:
        """Stop everything this run started; never raises (the run's result matters more)."""
        for process in (self.worker, self.api, self.central):
            if process is not None:
                process.stop()
        self.sim.close()
        for proxy in self.proxies.values():
            try:
                self.toxiproxy.delete_proxy(proxy.name, missing_ok=True)
            except Exception as exc:
                print(f"could not delete proxy {proxy.name}: {exc!r}")
        try:
            delete_queue(self.broker_url, self.env["STORE_SYNC_QUEUE"])
        except Exception as exc:
            print(f"could not delete queue {self.env['STORE_SYNC_QUEUE']}: {exc!r}")
        self.toxiproxy.close()


def delete_queue(broker_url: str, name: str) -> None:
    """Remove the run's durable quorum queue and exchange (they would pile up otherwise)."""
    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        Queue(name, Exchange(name, type="topic"), routing_key=name).bind(channel).delete()
        Exchange(name, type="topic").bind(channel).delete()


def _via(url: str, proxy: Proxy) -> str:
    """The same URL with host:port replaced by the proxy's listen address."""
    parts = urlsplit(url)
    netloc = f"127.0.0.1:{proxy.listen_port}"
    if parts.username:
        netloc = f"{parts.username}:{parts.password}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def start_stack(
    workdir: Path,
    *,
    broker_url: str,
    toxiproxy_url: str,
    store_env: Mapping[str, str],
    seed: int,
) -> Stack:
    """Start central_sim, the proxies, the store API and a worker, and wait until all answer.

    The three processes start at once: on a busy machine each takes seconds to import.
    """
    run_id = uuid.uuid4().hex[:8]
    log_dir = workdir / "logs"
    services = {name: secrets.token_urlsafe(24) for name in SERVICES}
    admin_token = secrets.token_urlsafe(24)
    central_port = free_port()
    central_env = {
        "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{workdir / 'central.db'}",
        "CENTRAL_SIM_JWT_SECRET": secrets.token_urlsafe(48),
        "CENTRAL_SIM_ADMIN_TOKEN": admin_token,
        "CENTRAL_SIM_SERVICES": json.dumps(services),
        "CENTRAL_SIM_SERVICES_FILE": "",
        "CENTRAL_SIM_LOG_LEVEL": "WARNING",
        "CENTRAL_SIM_RANDOM_SEED": str(seed),
    }
    central = Process(
        "central_sim",
        [*uvicorn_argv("central_sim.main:app", central_port), "--no-access-log"],
        env=central_env,
        log_dir=log_dir,
    ).start()
    central_url = f"http://127.0.0.1:{central_port}"
    toxiproxy = ToxiproxyClient(toxiproxy_url)
    proxies: dict[str, Proxy] = {}
    api: Process | None = None
    stack: Stack | None = None
    try:
        broker = urlsplit(broker_url)
        proxies["central"] = toxiproxy.create_proxy(
            f"chaos-{run_id}-central", "127.0.0.1:0", f"127.0.0.1:{central_port}"
        )
        proxies["broker"] = toxiproxy.create_proxy(
            f"chaos-{run_id}-broker",
            "127.0.0.1:0",
            f"{broker.hostname or '127.0.0.1'}:{broker.port or 5672}",
        )
        env = {
            "STORE_DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
            "STORE_DATA_DIR": str(workdir),
            "STORE_MIGRATE_ON_STARTUP": "true",
            "STORE_BROKER_URL": _via(broker_url, proxies["broker"]),
            "STORE_SYNC_QUEUE": f"store.sync.chaos-{run_id}",
            "STORE_CENTRAL_URL": _via(central_url, proxies["central"]),
            "STORE_CENTRAL_SERVICE_NAME": "inventory-service",
            "STORE_CENTRAL_SERVICE_SECRET": services["inventory-service"],
            "STORE_LOG_JSON": "false",
            "STORE_LOG_LEVEL": "INFO",
            **store_env,
        }
        api_port = free_port()
        api = Process(
            "store-api",
            [*uvicorn_argv("store_service.main:app", api_port), "--no-access-log"],
            # The API logs at WARNING: an INFO line per update costs CPU the traffic needs.
            env={**env, "STORE_LOG_LEVEL": "WARNING"},
            log_dir=log_dir,
        )
        stack = Stack(
            workdir=workdir,
            broker_url=broker_url,
            toxiproxy=toxiproxy,
            proxies=proxies,
            central=central,
            central_url=central_url,
            sim=SimAdmin(central_url, admin_token),
            api=api,
            api_url=f"http://127.0.0.1:{api_port}",
            env=env,
        )
        api.start()
        stack.launch_worker()
        stack.wait_central()
        stack.wait_api()
        stack.wait_worker()
        return stack
    except BaseException:
        for process in (stack.worker if stack else None, api, central):
            if process is not None:
                process.stop()
        for proxy in proxies.values():
            toxiproxy.delete_proxy(proxy.name, missing_ok=True)
        toxiproxy.close()
        raise
