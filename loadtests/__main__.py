"""Run a Locust profile headless, with reports and threshold exit codes.

    uv run python -m loadtests run --profile tills --users 50 --duration 30s \
        --host http://127.0.0.1:8001
    uv run python -m loadtests run --profile tills --shape draining --users 40 --duration 2m \
        --host http://127.0.0.1:8001   # sells while a sync drains; fails if the backlog stays
    uv run python -m loadtests run --profile mixed --shape spike --users 80 --duration 2m \
        --start-server                       # boots a store API on a temporary database first
    uv run python -m loadtests bench         # the benchmark (see loadtests/bench.py)

Reports land in `reports/load/<profile>-<shape>-<time>/`: `locust_stats.csv` (+ history and
failures CSV), `report.html`, `stats.json` (Locust's own) and `thresholds.json` (the verdict).
The exit code is Locust's: 0 when every threshold holds, 1 when one is broken.
Locust runs as a subprocess: this module never imports it.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness.store import start_store_api
from loadtests.plans import SHAPES
from loadtests.thresholds import Thresholds, parse_duration

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"

PROFILES: dict[str, list[str]] = {
    "tills": ["TillUser"],
    "receiving": ["ReceivingUser"],
    "readers": ["ReaderUser"],
    "retrying": ["RetryingUser"],
    "contention": ["HotSkuUser"],
    "mixed": ["TillUser", "ReceivingUser", "ReaderUser", "RetryingUser", "HotSkuUser"],
    # CI's smoke run: every behaviour, a little of each.
    "smoke": ["TillUser", "ReceivingUser", "ReaderUser", "RetryingUser", "HotSkuUser"],
}
DEFAULT_DURATION = {"soak": "30m"}


def locust_command(*, profile: str, host: str, report_dir: Path, stop_after: float) -> list[str]:
    """The headless Locust command line for a profile (the shape comes from the environment)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--only-summary",
        "--run-time",
        f"{int(stop_after)}s",  # a hard stop even if a shape misbehaves
        "--stop-timeout",
        "5",
        "--csv",
        str(report_dir / "locust"),
        "--csv-full-history",
        "--html",
        str(report_dir / "report.html"),
        "--json-file",
        str(report_dir / "stats"),
        *PROFILES[profile],
    ]


def run(args: argparse.Namespace) -> int:
    duration = parse_duration(args.duration or DEFAULT_DURATION.get(args.shape, "30s"))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report_dir = (args.out / f"{args.profile}-{args.shape}-{stamp}").resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    limits = Thresholds.from_env()
    env = {
        **os.environ,
        "LOAD_SHAPE": args.shape,
        "LOAD_USERS": str(args.users),
        "LOAD_DURATION": str(duration),
        "LOAD_SKUS": str(args.skus),
        "LOAD_THRESHOLDS_JSON": str(report_dir / "thresholds.json"),
        "LOAD_P95_MS": str(args.p95_ms if args.p95_ms is not None else limits.p95_ms),
        "LOAD_P99_MS": str(args.p99_ms if args.p99_ms is not None else limits.p99_ms),
        "LOAD_MAX_FAILURE_RATIO": str(
            args.max_failure_ratio
            if args.max_failure_ratio is not None
            else limits.max_failure_ratio
        ),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    server = None
    tmp = None
    host = args.host
    try:
        if args.start_server:
            tmp = tempfile.TemporaryDirectory(prefix="store-load-")
            server = start_store_api(
                Path(tmp.name), STORE_LOG_LEVEL=os.environ.get("STORE_LOG_LEVEL", "WARNING")
            )
            host = server.base_url
        if not host:
            raise SystemExit("give --host URL or --start-server")
        argv = locust_command(
            profile=args.profile, host=host, report_dir=report_dir, stop_after=duration + 30
        )
        print(" ".join(argv), flush=True)
        code = subprocess.run(argv, cwd=REPO, env=env, check=False).returncode
        print(f"reports in {report_dir} (exit {code})", flush=True)
        return code
    finally:
        if server is not None:
            server.process.stop(timeout=15)
        if tmp is not None:
            tmp.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a Locust profile headless")
    r.add_argument("--profile", choices=sorted(PROFILES), default="mixed")
    r.add_argument("--shape", choices=SHAPES, default="steady")
    r.add_argument("--users", type=int, default=20, help="peak simulated users")
    r.add_argument("--duration", help="e.g. 30s, 5m (default 30s; soak 30m)")
    r.add_argument("--host", help="store API base URL, e.g. http://127.0.0.1:8001")
    r.add_argument("--start-server", action="store_true", help="boot a store on a temp DB")
    r.add_argument("--skus", type=int, default=1000)
    r.add_argument("--p95-ms", type=float)
    r.add_argument("--p99-ms", type=float)
    r.add_argument("--max-failure-ratio", type=float)
    r.add_argument("--out", type=Path, default=REPO / "reports" / "load")
    sub.add_parser("bench", help="the benchmark: python -m loadtests.bench --help", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from loadtests.bench import main as bench_main

        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
