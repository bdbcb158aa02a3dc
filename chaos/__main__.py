"""`python -m chaos list` and `python -m chaos run [--scenario NAME] [--ops N] [--report DIR]
[--cuts N]`.

Needs a running RabbitMQ and Toxiproxy (`bash scripts/services/rabbitmq.sh ensure`,
`bash scripts/services/toxiproxy.sh ensure`). Exits 1 when any scenario fails.
"""

from __future__ import annotations

import argparse
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list(args.ci)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
