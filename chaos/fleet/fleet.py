"""Start and stop a fleet: one central_sim knowing N store identities, and N store nodes
(`chaos.node`), each with its own folder, SQLite file, identity, proxies and sync queue on the
one shared RabbitMQ.

Nodes start in waves of `wave` (API + worker each): forty Python processes importing at once on
two cores take longer in total than waves do, and a wave that fails stops the start early.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.node import StoreNode, launch_node
from chaos.toxiproxy import ToxiproxyClient
from harness.central import CentralSim, SimAdmin, launch_central
from harness.store import private_queue

COMPETING_SERVICE = "order-service"  # central_sim's competing writer journals as this


def store_identity(index: int) -> str:
    """Store `index`'s service name at central (its own secret is generated per run)."""
    return f"store-{index:03d}"


@dataclass
class Fleet:
    workdir: Path
    broker_url: str
    toxiproxy: ToxiproxyClient
    central: CentralSim
    sim: SimAdmin
    nodes: list[StoreNode]

    @property
    def services(self) -> list[str]:
        return [node.service for node in self.nodes]

    def stop(self) -> None:
        """Stop every process, delete every proxy and queue; never raises."""
        for node in self.nodes:
            node.stop()
        self.central.stop()
        self.sim.close()
        self.toxiproxy.close()


def start_fleet(
    workdir: Path,
    *,
    stores: int,
    broker_url: str,
    toxiproxy_url: str,
    store_env: Mapping[str, str],
    seed: int,
    wave: int = 4,
) -> Fleet:
    """central_sim and `stores` nodes, all answering (API ready, worker consuming)."""
    if stores < 1:
        raise ValueError("a fleet has at least one store")
    run_id = uuid.uuid4().hex[:8]
    identities = [store_identity(n) for n in range(stores)]
    central = launch_central(
        workdir,
        log_dir=workdir / "logs",
        services=[*identities, COMPETING_SERVICE],
        RANDOM_SEED=seed,
    )
    toxiproxy = ToxiproxyClient(toxiproxy_url)
    fleet = Fleet(workdir, broker_url, toxiproxy, central, central.admin(), [])
    try:
        central.wait_ready()
        for first in range(0, stores, wave):
            launched = [
                launch_node(
                    workdir / identity,
                    name=identity,
                    prefix=f"fleet-{run_id}-{identity}",
                    central=central,
                    service=identity,
                    queue=private_queue(f"fleet-{identity}"),
                    toxiproxy=toxiproxy,
                    broker_url=broker_url,
                    store_overrides=store_env,
                )
                for identity in identities[first : first + wave]
            ]
            fleet.nodes.extend(launched)
            for node in launched:
                node.wait_ready()
        return fleet
    except BaseException:
        fleet.stop()
        raise
