"""`python -m chaos list`, `python -m chaos run [--scenario NAME] [--ops N] [--report DIR]
[--cuts N]` and `python -m chaos fleet [--stores N] [--scenario a..e] [--report DIR]`
(docs/scaling.md).

Needs a running RabbitMQ and Toxiproxy (`bash scripts/services/rabbitmq.sh ensure`,
`bash scripts/services/toxiproxy.sh ensure`). Exits 1 when any scenario fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chaos import scenarios
from chaos.report import summary_line, summary_row, write_reports, write_summary
from chaos.runner import DEFAULT_BROKER_URL, DEFAULT_TOXIPROXY_URL, RunConfig, run_scenario


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    list_cmd = commands.add_parser("list", help="list the scenarios")
    list_cmd.add_argument("--ci", action="store_true", help="only the CI subset")
    run = commands.add_parser("run", help="run scenarios and write reports")
    run.add_argument("--scenario", action="append", help="a scenario name (repeatable)")
    run.add_argument("--ci", action="store_true", help="run only the CI subset")
    run.add_argument("--ops", type=int, default=1000, help="operations per scenario")
    run.add_argument("--skus", type=int, default=20)
    run.add_argument("--concurrency", type=int, default=6)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--converge-timeout", type=float, default=120.0)
    run.add_argument("--report", type=Path, default=Path("reports/chaos"))
    run.add_argument(
        "--cuts",
        type=int,
        help="power cuts per power-cut scenario (default: 20, or 3 with --ci)",
    )
    fleet = commands.add_parser("fleet", help="N store stacks, one central: fleet scenarios")
    fleet.add_argument("--stores", type=int, default=8)
    fleet.add_argument(
        "--scenario", action="append", help="a fleet scenario, by name or letter (repeatable)"
    )
    fleet.add_argument("--ops-per-store", type=int, default=150, help="operations per scenario")
    fleet.add_argument("--skus-per-store", type=int, default=5)
    fleet.add_argument("--concurrency", type=int, default=2, help="traffic threads per store")
    fleet.add_argument("--seed", type=int, default=1)
    fleet.add_argument("--converge-timeout", type=float, default=180.0)
    fleet.add_argument("--report", type=Path, default=Path("reports/fleet"))
    ingest = commands.add_parser("fleet-ingest", help="central_sim bulk-sync ingest, N clients")
    ingest.add_argument("--clients", default="1,8,20", help="comma-separated client counts")
    ingest.add_argument("--batches", type=int, default=20, help="batches per client")
    ingest.add_argument("--batch-size", type=int, default=100)
    ingest.add_argument("--shared-skus", action="store_true", help="every client, same SKUs")
    ingest.add_argument("--json", type=Path, help="also write the results here")
    broker = commands.add_parser("fleet-broker", help="RabbitMQ memory per store queue/conn")
    broker.add_argument("--queues", type=int, default=200)
    broker.add_argument("--connections", type=int, default=100)
    return parser


def _list(ci_only: bool) -> int:
    chosen = scenarios.ci_scenarios() if ci_only else scenarios.SCENARIOS
    width = max(len(s.name) for s in chosen)
    for s in chosen:
        tag = "ci " if s.ci else "   "
        print(f"{tag} {s.name:<{width}}  {s.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.scenario:
        chosen = [scenarios.get(name) for name in args.scenario]
    else:
        chosen = list(scenarios.ci_scenarios() if args.ci else scenarios.SCENARIOS)
    config = RunConfig(
        ops=args.ops,
        skus=args.skus,
        concurrency=args.concurrency,
        seed=args.seed,
        converge_timeout=args.converge_timeout,
        broker_url=os.environ.get("STORE_TEST_BROKER_URL", DEFAULT_BROKER_URL),
        toxiproxy_url=os.environ.get("TOXIPROXY_URL", DEFAULT_TOXIPROXY_URL),
        keep_dir=args.report,
    )
    failed = []
    for scenario in chosen:
        began = time.monotonic()
        print(f"== {scenario.name} ({args.ops} ops)", flush=True)
        cuts = args.cuts
        if cuts is None and args.ci and scenario.power_cuts is not None:
            cuts = scenario.power_cuts.ci_count
        try:
            result = run_scenario(scenario, replace(config, power_cuts=cuts))
        except Exception as exc:
            # A stack that cannot start is a failed scenario, not the end of the whole run.
            print(f"   ERROR: {scenario.name} could not run: {exc!r}", flush=True)
            failed.append(scenario.name)
            continue
        paths = write_reports(result, args.report)
        if not result.passed:
            failed.append(scenario.name)
        print(summary_line(summary_row(result)), flush=True)
        print(f"   {time.monotonic() - began:.0f} s; report {paths['markdown']}", flush=True)
    summary = write_summary(args.report)
    print(f"summary: {summary}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _fleet(args: argparse.Namespace) -> int:
    # Imported here: matplotlib and psutil are not needed by `list` or `run`.
    from chaos.fleet import scenarios as fleet_scenarios
    from chaos.fleet.main import run_fleet
    from chaos.fleet.runner import FleetConfig

    if args.scenario:
        chosen = [fleet_scenarios.get(name) for name in args.scenario]
    else:
        chosen = list(fleet_scenarios.SCENARIOS)
    config = FleetConfig(
        stores=args.stores,
        ops_per_store=args.ops_per_store,
        skus_per_store=args.skus_per_store,
        concurrency=args.concurrency,
        seed=args.seed,
        converge_timeout=args.converge_timeout,
    )
    run = run_fleet(
        config,
        chosen,
        args.report,
        broker_url=os.environ.get("STORE_TEST_BROKER_URL", DEFAULT_BROKER_URL),
        toxiproxy_url=os.environ.get("TOXIPROXY_URL", DEFAULT_TOXIPROXY_URL),
    )
    failed = [r.scenario.name for r in run.results if not r.passed] + run.errors
    print(f"summary: {run.summary}; failed: {', '.join(failed) or 'none'}")
    return 0 if run.passed else 1


def _ingest(args: argparse.Namespace) -> int:
    from chaos.fleet.ingest import run_ingest

    clients = [int(n) for n in args.clients.split(",")]
    results = run_ingest(
        clients, batches=args.batches, batch_size=args.batch_size, shared=args.shared_skus
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list(args.ci)
    if args.command == "fleet":
        return _fleet(args)
    if args.command == "fleet-ingest":
        return _ingest(args)
    if args.command == "fleet-broker":
        from chaos.fleet.broker_cost import measure_broker

        url = os.environ.get("STORE_TEST_BROKER_URL", DEFAULT_BROKER_URL)
        cost = measure_broker(url, queues=args.queues, connections=args.connections)
        print(json.dumps(cost.as_dict(), indent=2))
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
