"""One store as chaos sees it: API + worker on their own SQLite file and sync queue, talking to
central and the broker through two Toxiproxy proxies of their own.

    worker ──STORE_CENTRAL_URL──▶ proxy `<prefix>-central` ──▶ central_sim
    API, worker ──STORE_BROKER_URL──▶ proxy `<prefix>-broker` ──▶ RabbitMQ

Shared by the one-store scenarios (`chaos.stack`) and the fleet (`chaos.fleet`), which differ
only in how many nodes share one central_sim. Proxies are named by a run-unique prefix, so
concurrent runs and other users of the Toxiproxy server are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from chaos.toxiproxy import Proxy, ToxiproxyClient
from harness.broker import delete_queue_quietly
from harness.central import CentralSim
from harness.processes import Process
from harness.store import StoreApi, launch_store_api, launch_worker, store_env, wait_worker_ready


@dataclass
class StoreNode:
    name: str
    workdir: Path
    broker_url: str  # the real broker, for setup, teardown and the harness's own reads
    toxiproxy: ToxiproxyClient
    proxies: dict[str, Proxy]
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

    @property
    def queue(self) -> str:
        return self.env["STORE_SYNC_QUEUE"]

    @property
    def service(self) -> str:
        """The store's identity at central."""
        return self.env["STORE_CENTRAL_SERVICE_NAME"]

    def launch_worker(self) -> None:
        self.worker_starts += 1
        name = f"worker-{self.worker_starts}"
        name = f"{self.name}-{name}" if self.name else name
        self.worker = launch_worker(self.env, self.log_dir, name)

    def wait_worker(self) -> None:
        assert self.worker is not None
        wait_worker_ready(self.worker)

    def start_worker(self) -> None:
        self.launch_worker()
        self.wait_worker()

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def start_api(self) -> None:
        self.api.start()
        self.store.wait_ready()

    def wait_ready(self) -> None:
        self.store.wait_ready()
        self.wait_worker()

    def stop(self) -> None:
        """Stop the processes, delete the proxies and the queue; never raises."""
        for process in (self.worker, self.api):
            if process is not None:
                process.stop()
        for proxy in self.proxies.values():
            try:
                self.toxiproxy.delete_proxy(proxy.name, missing_ok=True)
            except Exception as exc:
                print(f"could not delete proxy {proxy.name}: {exc!r}")
        delete_queue_quietly(self.broker_url, self.queue)


def via(url: str, proxy: Proxy) -> str:
    """The same URL with host:port replaced by the proxy's listen address (credentials kept as
    written)."""
    parts = urlsplit(url)
    credentials, at, _address = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}127.0.0.1:{proxy.listen_port}"))


def launch_node(
    workdir: Path,
    *,
    name: str,
    prefix: str,
    central: CentralSim,
    service: str,
    queue: str,
    toxiproxy: ToxiproxyClient,
    broker_url: str,
    store_overrides: Mapping[str, str],
    api_log_level: str = "WARNING",
    store_dir: Path | None = None,
) -> StoreNode:
    """Create the node's proxies and start its API and worker without waiting (`wait_ready`).

    The store's database and data directory are in `store_dir` (default: `workdir`); the logs
    stay in `workdir`.

    The API logs at WARNING by default: an INFO line per update costs CPU the traffic needs.
    """
    proxies: dict[str, Proxy] = {}
    try:
        broker = urlsplit(broker_url)
        proxies["central"] = toxiproxy.create_proxy(
            f"{prefix}-central", "127.0.0.1:0", central.base_url.removeprefix("http://")
        )
        proxies["broker"] = toxiproxy.create_proxy(
            f"{prefix}-broker",
            "127.0.0.1:0",
            f"{broker.hostname or '127.0.0.1'}:{broker.port or 5672}",
        )
    except BaseException:
        for proxy in proxies.values():
            toxiproxy.delete_proxy(proxy.name, missing_ok=True)
        raise
    env = store_env(
        (store_dir or workdir) / "store.db",
        STORE_BROKER_URL=via(broker_url, proxies["broker"]),
        STORE_SYNC_QUEUE=queue,
        STORE_CENTRAL_URL=via(central.base_url, proxies["central"]),
        STORE_CENTRAL_SERVICE_NAME=service,
        STORE_CENTRAL_SERVICE_SECRET=central.services[service],
        STORE_LOG_JSON="false",
        STORE_LOG_LEVEL="INFO",
        **store_overrides,
    )
    log_dir = workdir / "logs"
    api = launch_store_api(
        workdir,
        env={**env, "STORE_LOG_LEVEL": api_log_level},
        log_dir=log_dir,
        name=f"{name}-api" if name else "store-api",
    )
    node = StoreNode(name, workdir, broker_url, toxiproxy, proxies, api, env)
    try:
        node.launch_worker()
    except BaseException:
        node.stop()
        raise
    return node
