"""One scenario's system under test: central_sim and one store node (`chaos.node`: store API
and worker behind their own two Toxiproxy proxies).

Every run gets fresh SQLite files in its own folder, its own proxies on free ports (named by
run id; we never call Toxiproxy's global `reset`), and its own sync queue, deleted at the end.
The processes are the harness's (`harness.central`, `harness.store`).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.node import StoreNode, launch_node
from chaos.toxiproxy import Proxy, ToxiproxyClient
from harness.central import SERVICE_NAMES, CentralSim, SimAdmin, launch_central
from harness.processes import REPO_ROOT, Process
from harness.store import StoreApi, private_queue

RABBITMQ_SCRIPT = REPO_ROOT / "scripts" / "services" / "rabbitmq.sh"


@dataclass
class Stack:
    workdir: Path
    broker_url: str  # the real broker, for setup and teardown only
    toxiproxy: ToxiproxyClient
    central: CentralSim
    sim: SimAdmin
    node: StoreNode

    # --- the one store node, by the names the fault window and runner use ----------------

    @property
    def proxies(self) -> dict[str, Proxy]:
        return self.node.proxies

    @property
    def store(self) -> StoreApi:
        return self.node.store

    @property
    def env(self) -> dict[str, str]:
        return self.node.env

    @property
    def worker(self) -> Process | None:
        return self.node.worker

    @property
    def api(self) -> Process:
        return self.node.api

    @property
    def api_url(self) -> str:
        return self.node.api_url

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def start_worker(self) -> None:
        self.node.start_worker()

    def kill_worker(self) -> None:
        self.node.kill_worker()

    def start_api(self) -> None:
        self.node.start_api()

    def restart_central(self) -> None:
        """SIGKILL and start again: same port, file and secrets (state lives in SQLite)."""
        self.central.restart(kill=True)

    def restart_rabbitmq(self) -> None:
        subprocess.run(["bash", str(RABBITMQ_SCRIPT), "restart"], check=True, timeout=300)

    def stop(self) -> None:
        """Stop everything this run started; never raises (the run's result matters more)."""
        self.node.stop()
        self.central.process.stop()
        self.sim.close()
        self.toxiproxy.close()


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
    log_dir = workdir / "logs"
    central = launch_central(workdir, log_dir=log_dir, RANDOM_SEED=seed)
    toxiproxy = ToxiproxyClient(toxiproxy_url)
    try:
        node = launch_node(
            workdir,
            name="",
            prefix=f"chaos-{uuid.uuid4().hex[:8]}",
            central=central,
            service=SERVICE_NAMES[0],
            queue=private_queue("chaos"),
            toxiproxy=toxiproxy,
            broker_url=broker_url,
            store_overrides=store_env,
            store_dir=store_dir,
        )
    except BaseException:
        central.stop()
        toxiproxy.close()
        raise
    stack = Stack(workdir, broker_url, toxiproxy, central, central.admin(), node)
    try:
        central.wait_ready()
        node.wait_ready()
        return stack
    except BaseException:
        stack.stop()
        raise
