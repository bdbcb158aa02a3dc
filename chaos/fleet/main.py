"""`python -m chaos fleet`: start a fleet once, run the chosen scenarios on it, write reports.

Needs RabbitMQ and Toxiproxy (`bash scripts/services/rabbitmq.sh ensure`,
`bash scripts/services/toxiproxy.sh ensure`). Bounded: traffic per scenario is a fixed number
of operations over a fixed time, convergence waits at most `converge_timeout`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from chaos.fleet.costs import fleet_costs
from chaos.fleet.fleet import Fleet, start_fleet
from chaos.fleet.observe import process_costs
from chaos.fleet.report import summary_line, summary_row, write_reports, write_summary
from chaos.fleet.runner import FleetConfig, FleetResult, run_fleet_scenario
from chaos.fleet.scenarios import FLEET_STORE_ENV, FleetScenario


@dataclass
class FleetRun:
    results: list[FleetResult]
    costs: dict[str, Any]
    summary: Path
    errors: list[str]

    @property
    def passed(self) -> bool:
        return not self.errors and all(r.passed for r in self.results)


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def run_fleet(
    config: FleetConfig,
    chosen: Sequence[FleetScenario],
    report_dir: Path,
    *,
    broker_url: str,
    toxiproxy_url: str,
    echo: bool = True,
) -> FleetRun:
    workdir = Path(tempfile.mkdtemp(prefix="fleet-"))
    began = time.monotonic()
    started = time.time()
    fleet: Fleet | None = None
    results: list[FleetResult] = []
    errors: list[str] = []
    passed = False
    try:
        fleet = start_fleet(
            workdir,
            stores=config.stores,
            broker_url=broker_url,
            toxiproxy_url=toxiproxy_url,
            store_env=FLEET_STORE_ENV,
            seed=config.seed,
        )
        startup = time.monotonic() - began
        if echo:
            print(f"fleet of {config.stores} stores up in {startup:.0f} s", flush=True)
        idle = [process_costs(node) for node in fleet.nodes]
        central_cpu = _cpu_seconds(fleet.central.process.pid)
        run_began = time.monotonic()
        for scenario in chosen:
            t = time.monotonic()
            try:
                result = run_fleet_scenario(fleet, scenario, config)
            except Exception as exc:
                # One scenario that cannot run is a failure, not the end of the run.
                errors.append(f"{scenario.name}: {exc!r}")
                if echo:
                    print(f"   ERROR: {scenario.name}: {exc!r}", flush=True)
                continue
            results.append(result)
            paths = write_reports(result, report_dir)
            if echo:
                print(summary_line(summary_row(result)), flush=True)
                print(f"   {time.monotonic() - t:.0f} s; {paths['markdown']}", flush=True)
        costs = fleet_costs(
            stores=config.stores,
            startup_seconds=startup,
            idle=idle,
            end=[process_costs(node) for node in fleet.nodes],
            central_cpu_s=_cpu_seconds(fleet.central.process.pid) - central_cpu,
            run_seconds=time.monotonic() - run_began,
            results=results,
        )
        summary = write_summary(report_dir, results, costs, started)
        run = FleetRun(results, costs, summary, errors)
        passed = run.passed
        return run
    finally:
        if fleet is not None:
            fleet.stop()
        if not passed:
            # Keep the process logs of a failed run beside its reports.
            shutil.copytree(
                workdir,
                report_dir / "fleet-logs",
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("*.db*"),
            )
        shutil.rmtree(workdir, ignore_errors=True)
