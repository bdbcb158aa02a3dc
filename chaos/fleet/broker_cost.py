"""What the shared RabbitMQ pays per store: resident memory of the broker node per quorum sync
queue (declared exactly as a store declares its own: `store_service.sync.celery_app.sync_queue`)
and per client connection, as the growth of the node's RSS (psutil on `beam.smp`) after
declaring `queues` queues and opening `connections` connections, all removed afterwards.

An estimate from outside: the Erlang VM grows its heap in steps, so a count large enough to
dwarf the steps (hundreds) gives a stable per-item figure. Needs to read the node's process
(same host, same user or root). Bounded: the queues and connections are this run's alone.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import psutil
from kombu.connection import Connection

from harness.broker import delete_queue
from store_service.config import Settings
from store_service.sync.celery_app import sync_queue


@dataclass(frozen=True, slots=True)
class BrokerCost:
    queues: int
    kib_per_queue: float
    connections: int
    kib_per_connection: float
    node_rss_mib_before: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _node() -> psutil.Process:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "beam.smp":
            return proc
    raise RuntimeError("no beam.smp process on this host: is RabbitMQ running here?")


def _rss_settled(node: psutil.Process) -> float:
    """The node's RSS once it stops moving (bounded: at most ~5 s)."""
    last = node.memory_info().rss
    for _ in range(10):
        time.sleep(0.5)
        now = node.memory_info().rss
        if abs(now - last) < 256 * 1024:
            return float(now)
        last = now
    return float(last)


def measure_broker(broker_url: str, *, queues: int, connections: int) -> BrokerCost:
    node = _node()
    tag = uuid.uuid4().hex[:8]
    names = [f"store.sync.cost-{tag}-{n:04d}" for n in range(queues)]
    before = _rss_settled(node)
    with Connection(broker_url, connect_timeout=10) as conn:
        channel = conn.default_channel
        try:
            for name in names:
                settings = Settings(broker_url=broker_url, sync_queue=name)
                sync_queue(settings).bind(channel).declare()
            with_queues = _rss_settled(node)
            opened = [Connection(broker_url, connect_timeout=10) for _ in range(connections)]
            try:
                for c in opened:
                    c.connect()
                with_connections = _rss_settled(node)
            finally:
                for c in opened:
                    c.release()
        finally:
            for name in names:
                delete_queue(broker_url, name)
    return BrokerCost(
        queues=queues,
        kib_per_queue=round((with_queues - before) / 1024 / max(1, queues), 1),
        connections=connections,
        kib_per_connection=round((with_connections - with_queues) / 1024 / max(1, connections), 1),
        node_rss_mib_before=round(before / 2**20, 1),
    )
