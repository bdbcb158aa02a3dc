"""Run one scenario end to end and return what happened and what the checker found.

Per scenario: a fresh temp folder; central_sim, proxies, store API and worker; central stock
seeded and the store refreshed; paced traffic (and the competing writer) with the fault window
opening `fault_at` seconds in; heal; sync triggers until the outbox has nothing pending or in
flight (bounded by `converge_timeout`); a final refresh of every SKU; then the checker over
the history, central's journal and stock, and the store's outbox and local view.

A scenario with power cuts (`Scenario.power_cuts`) puts the store's data directory on a LazyFS
mount and, instead of timing its window, keeps it open while `chaos.power` cuts the power
under the store the planned number of times; the clients retry unknown outcomes long enough
to ride out each restart.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from chaos import reads
from chaos.checker import CheckResult, Observation, check
from chaos.faults import Event, FaultWindow
from chaos.history import History
from chaos.monitor import Sample, Sampler, Trigger, TriggerAnswer
from chaos.power import PowerCut, PowerCutter, PowerRig
from chaos.power import expectations as power_expectations
from chaos.scenarios import BASE_STORE_ENV, Scenario
from chaos.stack import Stack, start_stack
from chaos.traffic import Traffic, TrafficPlan

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_TOXIPROXY_URL = "http://127.0.0.1:8474"
INITIAL_STOCK = 10_000  # high enough that sells never hit insufficient stock at central


@dataclass(frozen=True, slots=True)
class RunConfig:
    ops: int = 1000
    skus: int = 20
    concurrency: int = 6
    seed: int = 1
    converge_timeout: float = 120.0
    broker_url: str = DEFAULT_BROKER_URL
    toxiproxy_url: str = DEFAULT_TOXIPROXY_URL
    keep_dir: Path | None = None  # copy the run's logs here when it fails
    power_cuts: int | None = None  # cuts per power-cut scenario (None: the scenario's count)


@dataclass
class RunResult:
    scenario: Scenario
    config: RunConfig
    check: CheckResult
    started_at: float
    fault_opened_at: float | None
    healed_at: float | None
    traffic_done_at: float
    converged_at: float | None
    finished_at: float
    samples: list[Sample]
    triggers: list[TriggerAnswer]
    events: list[Event]
    central_stats: dict[str, Any]
    competing: dict[str, Any] | None
    expectations_failed: list[str] = field(default_factory=list)
    logs: str | None = None
    power_cuts: list[PowerCut] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.converged_at is not None

    @property
    def time_to_converge(self) -> float | None:
        """Seconds from the heal (or the end of traffic, if later) to an empty backlog."""
        if self.converged_at is None:
            return None
        since = max(self.healed_at or self.traffic_done_at, self.traffic_done_at)
        return max(0.0, self.converged_at - since)

    @property
    def passed(self) -> bool:
        if self.scenario.negative_control:
            # The control passes when the checker catches the broken store losing changes.
            return bool(self.check.lost) and not self.expectations_failed
        return self.check.ok and self.converged and not self.expectations_failed


def run_scenario(scenario: Scenario, config: RunConfig) -> RunResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{scenario.name}-"))
    env = {**BASE_STORE_ENV, **{k: str(v) for k, v in scenario.store_env.items()}}
    (workdir / "logs").mkdir(exist_ok=True)
    rig: PowerRig | None = None
    result: RunResult | None = None
    stack: Stack | None = None
    try:
        if scenario.power_cuts is not None:
            rig = PowerRig.start(workdir)
        stack = start_stack(
            workdir,
            broker_url=config.broker_url,
            toxiproxy_url=config.toxiproxy_url,
            store_env=env,
            seed=config.seed,
            store_dir=None if rig is None else rig.mountpoint,
        )
        result = _drive(stack, scenario, config, rig)
        return result
    finally:
        if stack is not None:
            stack.stop()
        if rig is not None:
            rig.stop()  # after the store's processes: nothing may hold the mount
        if result is not None and not result.passed and config.keep_dir is not None:
            target = config.keep_dir / f"{scenario.name}-logs"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(workdir / "logs", target)
            result.logs = str(target)
        shutil.rmtree(workdir, ignore_errors=True)


def _drive(stack: Stack, scenario: Scenario, config: RunConfig, rig: PowerRig | None) -> RunResult:
    skus = tuple(f"CHAOS-{n:03d}" for n in range(config.skus))
    initial = {sku: INITIAL_STOCK for sku in skus}
    for sku, quantity in initial.items():
        stack.sim.seed(sku, quantity)
    with httpx.Client(base_url=stack.api_url, timeout=15.0) as http:
        for sku in skus:
            http.post(f"/v1/local/inventory/{sku}/refresh").raise_for_status()

    history = History()
    plan = TrafficPlan(
        stack.api_url,
        skus,
        config.ops,
        scenario.traffic_seconds,
        concurrency=config.concurrency,
        seed=config.seed,
    )
    if scenario.power_cuts is not None:
        plan = replace(plan, retry_seconds=scenario.power_cuts.client_retry_seconds)
    traffic = Traffic(plan, history)
    sampler, trigger = Sampler(stack.api_url), Trigger(stack.api_url)
    window = FaultWindow(stack, scenario)
    started_at = time.time()
    sampler.start()
    trigger.start()
    if scenario.competing is not None:
        c = scenario.competing
        stack.sim.start_competing(
            list(skus),
            rate=c.rate_per_second,
            min_delta=c.min_delta,
            max_delta=c.max_delta,
            seconds=scenario.traffic_seconds + 10,
        )
    traffic_thread = threading.Thread(target=traffic.run, name="chaos-traffic", daemon=True)
    traffic_thread.start()
    cutter: PowerCutter | None = None
    try:
        reads.sleep_until(started_at + scenario.fault_at)
        window.open()
        if rig is not None and scenario.power_cuts is not None:
            cutter = PowerCutter(
                rig,
                stack,
                traffic,
                history,
                scenario.power_cuts,
                count=config.power_cuts or scenario.power_cuts.count,
                ops=config.ops,
                seed=config.seed,
                note=window.note,
            )
            cutter.run(traffic_thread)
        else:
            window.run_process_faults()
            reads.sleep_until(window.opened_at + scenario.fault_seconds)  # type: ignore[operator]
    finally:
        window.heal()
    traffic_thread.join(timeout=scenario.traffic_seconds + 120)
    traffic_done_at = time.time()
    competing = stack.sim.stop_competing() if scenario.competing is not None else None
    converged_at = reads.converge(stack.api_url, config.converge_timeout)
    trigger.stop()
    reads.refresh(stack.api_url, skus)
    sampler.tick()  # one last point after the final refresh
    sampler.stop()
    observation = _observe(stack, history, initial)
    result = RunResult(
        scenario=scenario,
        config=config,
        check=check(observation),
        started_at=started_at,
        fault_opened_at=window.opened_at,
        healed_at=window.healed_at,
        traffic_done_at=traffic_done_at,
        converged_at=converged_at,
        finished_at=time.time(),
        samples=sampler.samples,
        triggers=trigger.answers,
        events=window.events,
        central_stats=stack.sim.stats(),
        competing=competing,
        power_cuts=[] if cutter is None else cutter.cuts,
    )
    result.expectations_failed = _expectations(scenario, result)
    if cutter is not None:
        result.expectations_failed += power_expectations(scenario, cutter.cuts, cutter.count)
    return result


def _observe(stack: Stack, history: History, initial: dict[str, int]) -> Observation:
    changes, local = reads.outbox_and_view(stack.api_url)
    return Observation(
        history=history.requests(),
        initial=initial,
        journal=stack.sim.journal(),
        central=stack.sim.stock(),
        changes=changes,
        local=local,
    )


def _expectations(scenario: Scenario, result: RunResult) -> list[str]:
    """Scenario-specific proof that the fault bit (a fault that did nothing proves nothing)."""
    failed = []
    if "trigger_503" in scenario.expect:
        lo, hi = result.fault_opened_at or 0.0, result.healed_at or 0.0
        in_window = [t for t in result.triggers if lo <= t.at <= hi + 1.0]
        if not any(t.status == 503 and t.detail.startswith("Retry-After") for t in in_window):
            failed.append("no sync trigger answered 503 with Retry-After during the broker cut")
    return failed
