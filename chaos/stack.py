"""One scenario's system under test: central_sim, two Toxiproxy proxies, store API, worker.

    worker ──STORE_CENTRAL_URL──▶ proxy `chaos-<run>-central` ──▶ central_sim
    API, worker ──STORE_BROKER_URL──▶ proxy `chaos-<run>-broker` ──▶ RabbitMQ :5672

Every run gets fresh SQLite files in its own folder, its own proxies on free ports (named by
run id, so concurrent runs and other users of the Toxiproxy server are left alone; we never
call Toxiproxy's global `reset`), and its own sync queue, deleted at the end. The processes
are the harness's (`harness.central`, `harness.store`).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from chaos.toxiproxy import Proxy, ToxiproxyClient
from harness.broker import delete_queue
from harness.central import CentralSim, SimAdmin, launch_central
from harness.processes import REPO_ROOT, Process
from harness.store import (
    StoreApi,
    launch_store_api,
    launch_worker,
    private_queue,
    store_env,
    wait_worker_ready,
)

RABBITMQ_SCRIPT = REPO_ROOT / "scripts" / "services" / "rabbitmq.sh"


@dataclass
class Stack:
    workdir: Path
    broker_url: str  # the real broker, for setup and teardown only
    toxiproxy: ToxiproxyClient
    proxies: dict[str, Proxy]
    central: CentralSim
    sim: SimAdmin
    store: StoreApi
    env: dict[str, str]
    worker: Process | None = None
    worker_starts: int = field(default=0)

    @property
    def api(self) -> Process:
        return self.store.process

    @property
    def api_url(self) -> str:
        return self.store.base_url

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    # --- processes ------------------------------------------------------------------------

    def start_worker(self) -> None:
        self.launch_worker()
        self.wait_worker()

    def launch_worker(self) -> None:
        self.worker_starts += 1
        self.worker = launch_worker(self.env, self.log_dir, f"worker-{self.worker_starts}")

    def wait_worker(self) -> None:
        assert self.worker is not None
        wait_worker_ready(self.worker)

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def start_api(self) -> None:
        self.api.start()
        self.store.wait_ready()

    def restart_central(self) -> None:
        """SIGKILL and start again: same port, file and secrets (state lives in SQLite)."""
        self.central.restart(kill=True)

    def restart_rabbitmq(self) -> None:
        subprocess.run(["bash", str(RABBITMQ_SCRIPT), "restart"], check=True, timeout=300)

    def stop(self) -> None:
        """Stop everything this run started; never raises (the run's result matters more)."""
        for process in (self.worker, self.api, self.central.process):
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
    store_dir: Path | None = None,
) -> Stack:
    """Start central_sim, the proxies, the store API and a worker, and wait until all answer.

    The store's database and data directory are in `store_dir` (default: `workdir`; a LazyFS
    mount for the power cuts); central_sim and every log stay in `workdir`. The three
    processes start at once: on a busy machine each takes seconds to import.
    """
    run_id = uuid.uuid4().hex[:8]
    log_dir = workdir / "logs"
    central = launch_central(workdir, log_dir=log_dir, RANDOM_SEED=seed)
    toxiproxy = ToxiproxyClient(toxiproxy_url)
    proxies: dict[str, Proxy] = {}
    stack: Stack | None = None
    try:
        broker = urlsplit(broker_url)
        proxies["central"] = toxiproxy.create_proxy(
            f"chaos-{run_id}-central", "127.0.0.1:0", central.base_url.removeprefix("http://")
        )
        proxies["broker"] = toxiproxy.create_proxy(
            f"chaos-{run_id}-broker",
            "127.0.0.1:0",
            f"{broker.hostname or '127.0.0.1'}:{broker.port or 5672}",
        )
        env = _store_env(
            store_dir or workdir, central, proxies, broker_url, store_overrides=store_env
        )
        # The API logs at WARNING: an INFO line per update costs CPU the traffic needs.
        api = launch_store_api(workdir, env={**env, "STORE_LOG_LEVEL": "WARNING"}, log_dir=log_dir)
        stack = Stack(
            workdir=workdir,
            broker_url=broker_url,
            toxiproxy=toxiproxy,
            proxies=proxies,
            central=central,
            sim=central.admin(),
            store=api,
            env=env,
        )
        stack.launch_worker()
        central.wait_ready()
        api.wait_ready()
        stack.wait_worker()
        return stack
    except BaseException:
        if stack is not None:
            stack.stop()
        else:
            central.stop()
            for proxy in proxies.values():
                toxiproxy.delete_proxy(proxy.name, missing_ok=True)
            toxiproxy.close()
        raise


def _store_env(
    store_dir: Path,
    central: CentralSim,
    proxies: Mapping[str, Proxy],
    broker_url: str,
    *,
    store_overrides: Mapping[str, str],
) -> dict[str, str]:
    """The store's environment: the broker and central through their proxies."""
    return store_env(
        store_dir / "store.db",
        STORE_BROKER_URL=_via(broker_url, proxies["broker"]),
        STORE_SYNC_QUEUE=private_queue("chaos"),
        STORE_CENTRAL_URL=_via(central.base_url, proxies["central"]),
        STORE_CENTRAL_SERVICE_NAME="inventory-service",
        STORE_CENTRAL_SERVICE_SECRET=central.services["inventory-service"],
        STORE_LOG_JSON="false",
        STORE_LOG_LEVEL="INFO",
        **store_overrides,
    )
