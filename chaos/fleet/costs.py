"""What one store costs, from the processes' own counters over a fleet run: RSS idle and after
the run, CPU per 1,000 changes (API per update acknowledged, worker per change synced),
connections and queues at the broker, and central's calls per change and token issuance.

CPU deltas are taken between the idle snapshot and the end, for processes still running under
the same pid (a worker killed in a scenario restarts from zero; its predecessor's CPU is lost,
which makes the worker figure a slight underestimate on the scenarios that kill one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from chaos.fleet.runner import FleetResult


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _role(snapshots: Sequence[dict[str, Any]], role: str, key: str) -> list[float]:
    return [float(s[role][key]) for s in snapshots if s.get(role)]


def _cpu(idle: Sequence[dict[str, Any]], end: Sequence[dict[str, Any]], role: str) -> float:
    total = 0.0
    for before, after in zip(idle, end, strict=True):
        a, b = after.get(role), before.get(role)
        if a is None:
            continue
        same = b is not None and b["pid"] == a["pid"]
        total += a["cpu_s"] - (b["cpu_s"] if same and b is not None else 0.0)
    return total


def fleet_costs(
    *,
    stores: int,
    startup_seconds: float,
    idle: Sequence[dict[str, Any]],
    end: Sequence[dict[str, Any]],
    central_cpu_s: float,
    run_seconds: float,
    results: Sequence[FleetResult],
) -> dict[str, Any]:
    acknowledged = sum(s.check.acknowledged for r in results for s in r.stores)
    synced = sum(s.check.synced for r in results for s in r.stores)
    requests: dict[str, float] = {}
    applied = 0
    for r in results:
        for handler, n in r.central_requests.items():
            requests[handler] = requests.get(handler, 0.0) + n
        applied += r.central_after.get("totals", {}).get("applied", 0) - r.central_before.get(
            "totals", {}
        ).get("applied", 0)
    store_calls = sum(
        n for h, n in requests.items() if not h.startswith("/_sim") and h != "/health"
    )
    tokens = requests.get("/auth/token", 0.0)
    api_cpu, worker_cpu = _cpu(idle, end, "api"), _cpu(idle, end, "worker")
    broker = [
        float((s["api"] or {}).get("broker", 0) + (s["worker"] or {}).get("broker", 0))
        for s in idle
        if s.get("api") and s.get("worker")
    ]
    return {
        "stores": stores,
        "startup_seconds": round(startup_seconds, 1),
        "rss_mb_idle": {
            "api": _median(_role(idle, "api", "rss_mb")),
            "worker": _median(_role(idle, "worker", "rss_mb")),
        },
        "rss_mb_end": {
            "api": _median(_role(end, "api", "rss_mb")),
            "worker": _median(_role(end, "worker", "rss_mb")),
        },
        "broker_connections_per_store": _median(broker),
        "queues_per_store": 1,
        "acknowledged": acknowledged,
        "synced": synced,
        "api_cpu_s_per_1000_updates": round(1000 * api_cpu / acknowledged, 2)
        if acknowledged
        else None,
        "worker_cpu_s_per_1000_synced": round(1000 * worker_cpu / synced, 2) if synced else None,
        "central_cpu_s_per_1000_applied": round(1000 * central_cpu_s / applied, 2)
        if applied
        else None,
        "central_requests": {k: int(v) for k, v in sorted(requests.items())},
        "central_calls_per_change": round(store_calls / applied, 3) if applied else None,
        "tokens_issued": int(tokens),
        "tokens_per_store_hour": round(3600 * tokens / stores / run_seconds, 1)
        if run_seconds
        else None,
        "run_seconds": round(run_seconds, 1),
    }
