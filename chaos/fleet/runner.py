"""Run fleet scenarios on one started fleet and judge each with the checker.

The fleet starts once; each scenario gets SKUs of its own (`F<letter>-S<store>-<k>`, or
`F<letter>-X-<k>` when every store writes the same ones), so the checker restricted to them
(`chaos.checker.restrict`) sees exactly that scenario, per store and for central as a whole.
Per scenario: seed central, refresh every store, start traffic, triggers (the fast beat) and
the sampler; open the fault at `fault_at`, heal `fault_seconds` later; wait for every store's
outbox to drain (bounded); refresh; observe; check; check the scenario's expectations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.checker import CheckResult, Observation, check, fleet_stock_mismatches, restrict
from chaos.fleet.expect import expectations
from chaos.fleet.fleet import Fleet
from chaos.fleet.herd import Herd, herd_report
from chaos.fleet.observe import FleetSampler, StoreSample, process_costs
from chaos.fleet.scenarios import FleetFault, FleetScenario
from chaos.history import History
from chaos.monitor import Trigger, trigger_once
from chaos.node import StoreNode
from chaos.runner import INITIAL_STOCK, PAGE
from chaos.traffic import Traffic, TrafficPlan

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    stores: int = 8
    ops_per_store: int = 150
    skus_per_store: int = 5
    concurrency: int = 2  # traffic threads per store
    seed: int = 1
    converge_timeout: float = 180.0
    sample_every: float = 1.0


@dataclass
class StoreOutcome:
    service: str
    check: CheckResult
    converged_at: float | None
    samples: list[StoreSample]
    costs_before: dict[str, Any]
    costs_after: dict[str, Any]


@dataclass
class FleetResult:
    scenario: FleetScenario
    config: FleetConfig
    stores: list[StoreOutcome]
    central_mismatches: list[dict[str, Any]]
    started_at: float
    fault_opened_at: float
    healed_at: float
    traffic_done_at: float
    finished_at: float
    central_before: dict[str, Any]
    central_after: dict[str, Any]
    central_requests: dict[str, float]
    competing: dict[str, Any] | None
    herd: Herd | None
    events: list[tuple[float, str]] = field(default_factory=list)
    expectations_failed: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return all(s.converged_at is not None for s in self.stores)

    @property
    def converged_at(self) -> float | None:
        times = [s.converged_at for s in self.stores]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    @property
    def checks_ok(self) -> bool:
        return all(s.check.ok for s in self.stores) and not self.central_mismatches

    @property
    def passed(self) -> bool:
        return self.checks_ok and self.converged and not self.expectations_failed


def scenario_skus(scenario: FleetScenario, stores: int, per_store: int) -> list[tuple[str, ...]]:
    """Each store's SKUs for this scenario (the same tuple for all when they are shared)."""
    letter = scenario.name.split("-", 1)[0].upper()
    if scenario.shared_skus:
        shared = tuple(f"F{letter}-X-{k:02d}" for k in range(per_store))
        return [shared] * stores
    return [tuple(f"F{letter}-S{n:03d}-{k:02d}" for k in range(per_store)) for n in range(stores)]


def _parallel(fn: Callable[..., T], nodes: Sequence[StoreNode], *more: Sequence[Any]) -> list[T]:
    """`fn(node, *per-node args)` for every node, a few at a time."""
    with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
        return list(pool.map(fn, nodes, *more))


def run_fleet_scenario(fleet: Fleet, scenario: FleetScenario, config: FleetConfig) -> FleetResult:
    nodes = fleet.nodes
    skus = scenario_skus(scenario, len(nodes), config.skus_per_store)
    all_skus = sorted({sku for own in skus for sku in own})
    initial = dict.fromkeys(all_skus, INITIAL_STOCK)
    for sku in all_skus:
        fleet.sim.seed(sku, INITIAL_STOCK)
    _parallel(_refresh, nodes, skus)
    journal_mark = _journal_high_water(fleet)
    central_before = fleet.sim.stats()
    requests_before = _central_requests(fleet)
    costs_before = _parallel(process_costs, nodes)

    histories = [History() for _ in nodes]
    traffics = [
        Traffic(
            TrafficPlan(
                node.api_url,
                skus[n],
                config.ops_per_store,
                scenario.traffic_seconds,
                concurrency=config.concurrency,
                seed=config.seed * 1000 + n,
            ),
            histories[n],
        )
        for n, node in enumerate(nodes)
    ]
    sampler = FleetSampler(nodes, fleet.broker_url, every=config.sample_every)
    triggers = [Trigger(node.api_url) for node in nodes]
    events: list[tuple[float, str]] = []
    started_at = time.time()
    sampler.start()
    for trigger in triggers:
        trigger.start()
    if scenario.competing is not None:
        c = scenario.competing
        fleet.sim.start_competing(
            all_skus,
            rate=c.rate_per_second,
            min_delta=c.min_delta,
            max_delta=c.max_delta,
            seconds=scenario.traffic_seconds + 10,
        )
    threads = [threading.Thread(target=t.run, daemon=True) for t in traffics]
    for thread in threads:
        thread.start()
    herd_due: list[float] = []
    _sleep_until(started_at + scenario.fault_at)
    fault_opened_at = time.time()
    try:
        _open(fleet, scenario, events)
        _sleep_until(fault_opened_at + scenario.fault_seconds)
        if scenario.fault is FleetFault.REGION_OUTAGE:
            herd_due = _due_offsets(nodes)  # when each pending change may be retried
    finally:
        healed_at = _heal(fleet, scenario, events)
    for thread in threads:
        thread.join(timeout=scenario.traffic_seconds + 120)
    traffic_done_at = time.time()
    competing = fleet.sim.stop_competing() if scenario.competing is not None else None
    converged = _parallel(_converge, nodes, [config.converge_timeout] * len(nodes))
    for trigger in triggers:
        trigger.stop()
    _parallel(_refresh, nodes, skus)
    sampler.stop()

    journal = [e for e in fleet.sim.journal_since(journal_mark) if e["sku"] in initial]
    central = {sku: q for sku, q in fleet.sim.stock().items() if sku in initial}
    observed = _parallel(_outbox_and_view, nodes)
    outcomes = []
    for n, node in enumerate(nodes):
        changes, local = observed[n]
        whole = Observation(histories[n].requests(), initial, journal, central, changes, local)
        outcomes.append(
            StoreOutcome(
                service=node.service,
                check=check(restrict(whole, skus[n], store_service=node.service)),
                converged_at=converged[n],
                samples=sampler.samples[n],
                costs_before=costs_before[n],
                costs_after=process_costs(node),
            )
        )
    central_mismatches = fleet_stock_mismatches(
        initial=initial,
        central=central,
        journal=journal,
        changes_by_service={
            node.service: [c for c in observed[n][0] if c["sku"] in initial]
            for n, node in enumerate(nodes)
        },
    )
    result = FleetResult(
        scenario=scenario,
        config=config,
        stores=outcomes,
        central_mismatches=central_mismatches,
        started_at=started_at,
        fault_opened_at=fault_opened_at,
        healed_at=healed_at,
        traffic_done_at=traffic_done_at,
        finished_at=time.time(),
        central_before=central_before,
        central_after=fleet.sim.stats(),
        central_requests=_diff(_central_requests(fleet), requests_before),
        competing=competing,
        herd=None,
        events=events,
    )
    if scenario.fault is FleetFault.REGION_OUTAGE:
        result.herd = herd_report(
            journal, set(fleet.services), healed_at, result.converged_at, herd_due
        )
    result.expectations_failed = expectations(result)
    return result


# --- faults ---------------------------------------------------------------------------------


def _open(fleet: Fleet, scenario: FleetScenario, events: list[tuple[float, str]]) -> None:
    victim = fleet.nodes[0]
    if scenario.fault is FleetFault.PARTITION:
        fleet.toxiproxy.disable(victim.proxies["central"].name)
        events.append((time.time(), f"{victim.service} cut from central"))
    elif scenario.fault is FleetFault.REVOKE:
        fleet.sim.revoke(victim.service)
        events.append((time.time(), f"{victim.service} revoked at central"))
    elif scenario.fault is FleetFault.REGION_OUTAGE:
        for node in fleet.nodes:
            fleet.toxiproxy.disable(node.proxies["central"].name)
        events.append((time.time(), "every store cut from central"))
    elif scenario.fault is FleetFault.KILL_WORKER:
        victim.kill_worker()
        events.append((time.time(), f"{victim.service} worker SIGKILL"))


def _heal(fleet: Fleet, scenario: FleetScenario, events: list[tuple[float, str]]) -> float:
    """Undo the fault; every store's path healed in one go (the herd starts here)."""
    victim = fleet.nodes[0]
    if scenario.fault is FleetFault.REVOKE:
        fleet.sim.restore(victim.service)
    for node in fleet.nodes:  # idempotent: enabling an enabled proxy changes nothing
        fleet.toxiproxy.enable(node.proxies["central"].name)
    healed_at = time.time()
    events.append((healed_at, "healed"))
    if victim.worker is None or not victim.worker.alive():
        victim.start_worker()
        events.append((time.time(), f"{victim.service} worker started"))
    return healed_at


# --- reads ----------------------------------------------------------------------------------


def _sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def _refresh(node: StoreNode, skus: Sequence[str]) -> None:
    """Learn central's stock for `skus` (retrying a 503 for a few seconds)."""
    with httpx.Client(base_url=node.api_url, timeout=15.0) as http:
        for sku in skus:
            for _ in range(20):
                if http.post(f"/v1/local/inventory/{sku}/refresh").status_code == 200:
                    break
                time.sleep(0.5)


def _converge(node: StoreNode, timeout: float) -> float | None:
    """Trigger syncs until nothing is pending or in flight; when that happened, or None."""
    deadline = time.monotonic() + timeout
    last_trigger = 0.0
    with httpx.Client(base_url=node.api_url, timeout=15.0) as http:
        while time.monotonic() < deadline:
            try:
                counts = http.get("/v1/local/sync/summary").json()["counts"]
            except (httpx.HTTPError, ValueError, KeyError):
                counts = None
            if counts is not None and not counts.get("pending") and not counts.get("in_flight"):
                return time.time()
            if time.monotonic() - last_trigger > 2.0:
                trigger_once(http)
                last_trigger = time.monotonic()
            time.sleep(0.25)
    return None


def _pages(http: httpx.Client, path: str, key: str, cursor: str, next_key: str) -> list[Any]:
    items: list[Any] = []
    params: dict[str, Any] = {"limit": PAGE}
    while True:
        page = http.get(path, params=params)
        page.raise_for_status()
        body = page.json()
        items.extend(body[key])
        if body[next_key] is None:
            return items
        params[cursor] = body[next_key]


def _outbox_and_view(node: StoreNode) -> tuple[list[Any], dict[str, Any]]:
    with httpx.Client(base_url=node.api_url, timeout=30.0) as http:
        changes = _pages(http, "/v1/local/changes", "items", "after_id", "next_after_id")
        local = _pages(http, "/v1/local/inventory", "items", "after", "next_after")
    return changes, {item["sku"]: item for item in local}


def _due_offsets(nodes: Sequence[StoreNode]) -> list[float]:
    """Each pending change's next attempt time, read just before the heal (absolute)."""
    due: list[float] = []
    for node in nodes:
        with httpx.Client(base_url=node.api_url, timeout=15.0) as http:
            try:
                for change in _pending(http):
                    if change.get("next_attempt_at") is not None:
                        due.append(float(change["next_attempt_at"]))
            except httpx.HTTPError:
                continue
    return due


def _pending(http: httpx.Client) -> list[Any]:
    items: list[Any] = []
    params: dict[str, Any] = {"limit": PAGE, "status": "pending"}
    while True:
        body = http.get("/v1/local/changes", params=params).json()
        items.extend(body["items"])
        if body["next_after_id"] is None:
            return items
        params["after_id"] = body["next_after_id"]


def _journal_high_water(fleet: Fleet) -> int:
    return int(fleet.sim.journal_tail())


def _central_requests(fleet: Fleet) -> dict[str, float]:
    """central_sim's HTTP request counters by handler (its /metrics)."""
    text = httpx.get(f"{fleet.central.base_url}/metrics", timeout=10.0).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "central_sim_http_requests":
            continue
        for sample in family.samples:
            if sample.name == "central_sim_http_requests_total":
                handler = sample.labels.get("handler", "?")
                totals[handler] = totals.get(handler, 0.0) + sample.value
    return totals


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}
