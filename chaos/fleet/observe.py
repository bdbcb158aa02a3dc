"""What the fleet runner watches while a scenario runs, and what each store process costs.

`FleetSampler` reads, every `every` seconds and for every store, its outbox summary (backlog,
oldest pending age = sync lag, auth failure), its readiness report, and RabbitMQ's own depth
and consumer count of its sync queue (a passive `queue.declare`, `harness.broker.BrokerView`).
The store's own queue-depth metric, when it has one, is the production signal; RabbitMQ's view
is the ground truth the harness checks it against.

`process_costs` reads RSS, CPU time and broker sockets of each store's API and worker (psutil).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from chaos.node import StoreNode
from harness.broker import BrokerView


@dataclass(frozen=True, slots=True)
class StoreSample:
    at: float
    counts: dict[str, int] | None  # None: the API did not answer
    lag: float | None  # oldest pending or in-flight change's age, seconds
    auth_failed: bool
    backlog_health: str | None  # the readiness report's `backlog` component
    queue_messages: int | None  # RabbitMQ's ready messages in the store's sync queue
    queue_consumers: int | None


class FleetSampler:
    def __init__(self, nodes: list[StoreNode], broker_url: str, every: float = 1.0) -> None:
        self.nodes = nodes
        self.every = every
        self.samples: list[list[StoreSample]] = [[] for _ in nodes]
        self._broker_url = broker_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        clients = [httpx.Client(base_url=n.api_url, timeout=3.0) for n in self.nodes]
        view = BrokerView(self._broker_url)
        try:
            while not self._stop.is_set():
                self.tick(clients, view)
                self._stop.wait(self.every)
            self.tick(clients, view)  # one last point once the run has settled
        finally:
            for client in clients:
                client.close()
            view.close()

    def tick(self, clients: list[httpx.Client], view: BrokerView) -> None:
        for index, (node, http) in enumerate(zip(self.nodes, clients, strict=True)):
            self.samples[index].append(_sample(node, http, view))


def _sample(node: StoreNode, http: httpx.Client, view: BrokerView) -> StoreSample:
    now = time.time()
    counts: dict[str, int] | None = None
    lag: float | None = None
    auth_failed = False
    try:
        response = http.get("/v1/local/sync/summary")
        if response.status_code == 200:
            body = response.json()
            counts = dict(body["counts"])
            lag = body["oldest_pending_age_seconds"]
            auth_failed = body["auth_failed"] is not None
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    health: str | None = None
    try:
        report = http.get("/health/ready").json()
        health = str(report["components"]["backlog"]["status"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass
    messages = consumers = None
    try:
        depth = view.depth(node.queue)
        messages, consumers = depth.messages, depth.consumers
    except Exception:  # noqa: S110  # a broker hiccup is a gap in the curve, not a failure
        pass
    return StoreSample(now, counts, lag, auth_failed, health, messages, consumers)


def _one_process(pid: int | None, broker_port: int) -> dict[str, Any] | None:
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            rss = proc.memory_info().rss
            sockets = sum(
                1
                for c in proc.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == broker_port
            )
    except psutil.Error:
        return None
    return {"pid": pid, "rss_mb": rss / 2**20, "cpu_s": cpu.user + cpu.system, "broker": sockets}


def process_costs(node: StoreNode) -> dict[str, dict[str, Any] | None]:
    """RSS (MiB), CPU seconds so far and open broker connections of the node's processes."""
    port = node.proxies["broker"].listen_port
    worker_pid = node.worker.pid if node.worker is not None else None
    return {"api": _one_process(node.api.pid, port), "worker": _one_process(worker_pid, port)}
