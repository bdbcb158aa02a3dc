"""Benchmark (c): drain an outbox backlog to a real central_sim with `run_sync`.

The backlog is written through the real `Writer` and `apply_update` (1,000 updates per
transaction, so building it is quick), over `skus` SKUs with positive deltas (receiving: central
applies every one, nothing is refused for stock). The drain runs in a child process
(`python -m loadtests.drain_bench child ...`) so its peak RSS is the drain's alone; the child
samples its RSS every 0.2 s as well, to show whether memory grows with the backlog.
The one-by-one comparison sends a sample of fresh changes sequentially to `/adjust` over one
keep-alive connection and extrapolates that rate to the backlog (stated in the table).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from harness.central import start_central
from loadtests.sampling import sku_name

REPO = Path(__file__).resolve().parent.parent


def build_backlog(database: Path, *, changes: int, skus: int) -> float:
    """Write `changes` pending changes through the API's writer; returns seconds taken."""
    from store_service.config import Settings
    from store_service.inventory import UpdateCommand, apply_update
    from store_service.storage import db
    from store_service.storage.writer import Writer

    settings = Settings(database_url=f"sqlite:///{database}")
    db.migrate(settings)

    def apply_many(conn: Any, commands: list[UpdateCommand], now: float) -> None:
        for command in commands:
            apply_update(conn, command, allow_negative=True, now=now)

    writer = Writer(database).start()
    started = time.monotonic()
    try:
        for start in range(0, changes, 1000):
            commands = [
                UpdateCommand(
                    sku=sku_name(i % skus + 1),
                    delta=1 + i % 5,
                    operation_id=f"backlog-{i}-{uuid.uuid4().hex[:8]}",
                    version=None,
                )
                for i in range(start, min(start + 1000, changes))
            ]
            writer.run_blocking(apply_many, commands, time.time())
    finally:
        writer.stop()
    return time.monotonic() - started


def one_by_one(url: str, secret: str, *, sample: int, skus: int) -> float:
    """Changes per second when each is its own `/adjust` call (sequential, keep-alive)."""
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.post(
            "/auth/token", json={"service_name": "inventory-service", "service_secret": secret}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        for i in range(sample):
            sku = sku_name(i % skus + 1)
            response = http.post(
                f"/v1/inventory/{sku}/adjust",
                json={"sku": sku, "delta": 1 + i % 5},
                headers={**headers, "Idempotency-Key": f"one-{i}-{uuid.uuid4().hex[:8]}"},
            )
            response.raise_for_status()
        return sample / (time.monotonic() - started)


def bench_drain(workdir: Path, *, backlog: int, batch_size: int, sample: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    skus = 1000
    database = workdir / "store.db"
    print(f"  (c) writing a {backlog:,}-change backlog through the writer...", flush=True)
    build_seconds = build_backlog(database, changes=backlog, skus=skus)
    central = start_central(workdir)
    url, secret = central.base_url, central.services["inventory-service"]
    try:
        print(f"  (c) draining to central_sim with run_sync (batch {batch_size})...", flush=True)
        argv = [
            sys.executable, "-m", "loadtests.drain_bench", "child", "--database", str(database),
            "--central-url", url, "--batch-size", str(batch_size),
        ]  # fmt: skip
        child = subprocess.run(
            argv, cwd=REPO, env={**os.environ, "BENCH_CENTRAL_SECRET": secret, "STORE_LOG_LEVEL":
                                 "WARNING"}, capture_output=True, text=True, timeout=1800,
            check=False,
        )  # fmt: skip
        if child.returncode != 0:
            raise RuntimeError(f"drain child failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  (c) one by one: {sample:,} sequential /adjust calls...", flush=True)
        per_s = one_by_one(url, secret, sample=sample, skus=skus)
    finally:
        central.stop()
    rate = backlog / result["seconds"]
    return {
        "backlog": backlog,
        "skus": skus,
        "batch_size": batch_size,
        "backlog_build_seconds": build_seconds,
        "drain_seconds": result["seconds"],
        "changes_per_s": rate,
        "runs": result["runs"],
        "outcomes": result["outcomes"],
        "stopped_reason": result["stopped_reason"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
        "rss_samples_mb": result["rss_samples_mb"],
        "one_by_one_sample": sample,
        "one_by_one_per_s": per_s,
        "one_by_one_extrapolated_s": backlog / per_s,
        "ratio_to_one_by_one": rate / per_s,
    }


# --- the child process: one drain, measured -------------------------------------------------


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> None:
    from pydantic import SecretStr

    from store_service.config import Settings
    from store_service.gc_tuning import freeze_startup_objects
    from store_service.logs import configure_logging
    from store_service.sync.run import run_sync

    configure_logging("WARNING")
    freeze_startup_objects()  # as the worker does once it is initialised
    settings = Settings(
        database_url=f"sqlite:///{args.database}",
        central_url=args.central_url,
        central_service_secret=SecretStr(os.environ["BENCH_CENTRAL_SECRET"]),
        sync_batch_size=args.batch_size,
        sync_time_budget_seconds=1200,
    )
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append(round(_rss_mb(), 1))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    runs = 0
    reason = ""
    while runs < 20:  # a run ends drained, or at its time budget (then another run continues)
        runs += 1
        report = run_sync(settings)
        for key, value in report.outcomes.items():
            outcomes[key] = outcomes.get(key, 0) + value
        reason = report.stopped_reason
        if reason != "time_budget":
            break
    seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    step = max(1, len(samples) // 10)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "runs": runs,
                "outcomes": outcomes,
                "stopped_reason": reason,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "rss_samples_mb": samples[::step],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.drain_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("child", help="(internal) one measured drain")
    c.add_argument("--database", type=Path, required=True)
    c.add_argument("--central-url", required=True)
    c.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    child(args)


if __name__ == "__main__":
    main()
