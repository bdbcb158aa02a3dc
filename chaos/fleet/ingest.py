"""central_sim's bulk-sync ingest with N concurrent stores, without the stores: N clients, each
with its own identity and token, send `batches` batches of `batch_size` changes as fast as
central answers (what N workers draining a backlog after an outage do), on SKUs of their own
(`shared=False`) or all on the same SKUs (unversioned deltas: no conflicts, one row's lock).

Prints changes/s per N, and the ratio to N = 1 measured in the same run. The load generator
runs on the same machine as central_sim: on two cores the figure is a floor, not a ceiling.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from chaos.fleet.fleet import store_identity
from harness.central import CentralSim, start_central


@dataclass(frozen=True, slots=True)
class IngestResult:
    clients: int
    changes: int
    seconds: float
    changes_per_second: float
    batch_p50_ms: float
    batch_p95_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _client(
    sim: CentralSim,
    n: int,
    batches: int,
    batch_size: int,
    shared: bool,
    start: threading.Barrier,
    latencies: list[float],
    applied: list[int],
) -> None:
    service = store_identity(n)
    tag = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=sim.base_url, timeout=60.0) as http:
        token = http.post(
            "/auth/token",
            json={"service_name": service, "service_secret": sim.services[service]},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        start.wait()  # every client holds its token before the clock starts
        for b in range(batches):
            items = [
                {
                    "sku": f"ING-{'X' if shared else n}-{k % 20:02d}",
                    "delta": 1,
                    "operation_id": f"ing-{tag}-{b}-{k}",
                }
                for k in range(batch_size)
            ]
            began = time.perf_counter()
            response = http.post("/v1/inventory/bulk-sync", json={"items": items}, headers=headers)
            latencies.append(time.perf_counter() - began)
            response.raise_for_status()
            results = response.json()["results"]
            applied.append(sum(r["status"] == "applied" for r in results))


def measure(
    sim: CentralSim, clients: int, *, batches: int, batch_size: int, shared: bool
) -> IngestResult:
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []
    applied: list[int] = []
    threads = [
        threading.Thread(
            target=_client,
            args=(sim, n, batches, batch_size, shared, start, latencies, applied),
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    seconds = time.perf_counter() - began
    changes = sum(applied)  # only what central applied counts as ingested
    ordered = sorted(latencies) or [0.0]
    return IngestResult(
        clients=clients,
        changes=changes,
        seconds=round(seconds, 2),
        changes_per_second=round(changes / seconds, 1),
        batch_p50_ms=round(1000 * ordered[len(ordered) // 2], 1),
        batch_p95_ms=round(1000 * ordered[int(len(ordered) * 0.95) - 1 or 0], 1),
    )


def run_ingest(
    clients: Sequence[int], *, batches: int, batch_size: int, shared: bool
) -> list[IngestResult]:
    """One fresh central_sim knowing max(clients) identities; each N measured in turn."""
    workdir = Path(tempfile.mkdtemp(prefix="fleet-ingest-"))
    sim = start_central(workdir, services=[store_identity(n) for n in range(max(clients))])
    try:
        results = []
        for n in clients:
            result = measure(sim, n, batches=batches, batch_size=batch_size, shared=shared)
            results.append(result)
            base = results[0].changes_per_second
            print(
                f"clients={n:3d}  {result.changes:6d} changes in {result.seconds:6.2f} s = "
                f"{result.changes_per_second:8.1f}/s  (x{result.changes_per_second / base:.2f} "
                f"of N={results[0].clients})  batch p50 {result.batch_p50_ms} ms, "
                f"p95 {result.batch_p95_ms} ms",
                flush=True,
            )
        return results
    finally:
        sim.stop()
