"""Benchmark (f): recovery after `kill -9` with a big outbox.

    uv run python -m loadtests.recovery_bench                      # 1,000,000 pending, 10M history
    uv run python -m loadtests.recovery_bench --pending 20000 --final 100000 --repeat 1  # smoke

Each repetition copies a template (loadtests/history.py: `final` synced changes, `pending`
newer ones, `ids` operation_ids) and runs, against a real central_sim and a real RabbitMQ:

1. the store API (`python -m store_service.serve`, migrations on start) and a Celery worker
   (threads pool) on it; a sync trigger; once central's journal shows the worker's batches,
   both are killed with SIGKILL (a run in flight: changes `in_flight`, the lease held);
2. both started again at the same moment (t0); a client posts one update every 20 ms until
   one is answered 200 (the first acknowledged update), then asks for a sync
   (`POST /v1/local/sync/trigger`); the first batch at central is central_sim's journal time
   of the first entry after the kill (one machine, one clock).

Also measured once per run on a copy: each start-up step's statements and time
(loadtests/startup_audit.py), and Alembic's upgrade with nothing to migrate. Targets: first
update <= 2 s, first batch at central <= 5 s. JSON in reports/bench/.
"""

import argparse
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from harness.broker import delete_queue_quietly
from harness.central import CentralSim, SimAdmin, start_central
from harness.commands import celery_argv, store_api_argv
from harness.processes import Process, free_port
from loadtests import history
from loadtests.reports import report_header, spread, write_report

REPO = Path(__file__).resolve().parent.parent
TARGET_UPDATE_S = 2.0
TARGET_CENTRAL_S = 5.0
NOTE = (
    "2 shared cores: the API, the worker, RabbitMQ, central_sim and the client, beside other "
    "engineers' runs"
)


def _env(workdir: Path, central: CentralSim, broker_url: str, queue: str) -> dict[str, str]:
    return {
        "STORE_DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
        "STORE_DATA_DIR": str(workdir),
        "STORE_MIGRATE_ON_STARTUP": "true",
        "STORE_BROKER_URL": broker_url,
        "STORE_SYNC_QUEUE": queue,
        "STORE_CENTRAL_URL": central.base_url,
        "STORE_CENTRAL_SERVICE_NAME": "inventory-service",
        "STORE_CENTRAL_SERVICE_SECRET": central.services["inventory-service"],
        "STORE_ALLOW_NEGATIVE_STOCK": "true",
        "STORE_LOG_LEVEL": "WARNING",
        "STORE_WORKER_METRICS_PORT": "0",
    }


def _processes(
    workdir: Path, env: dict[str, str], port: int, round_: str
) -> tuple[Process, Process]:
    logs = workdir / "logs"
    api = Process(f"store-api-{round_}", store_api_argv(port), env=env, log_dir=logs)
    node = f"recovery-{uuid.uuid4().hex[:6]}@localhost"
    worker_args = ["worker", "--pool=threads", "--concurrency", "1", "--without-mingle"]
    worker = Process(
        f"worker-{round_}",
        celery_argv(*worker_args, "--without-gossip", "-n", node),
        env=env,
        log_dir=logs,
    )
    return api, worker


def _first_update(url: str, *, timeout: float) -> float:
    """Post one update every 20 ms until one is answered 200; the time of that answer."""
    deadline = time.monotonic() + timeout
    op = f"recovery-{uuid.uuid4().hex}"
    with httpx.Client(base_url=url, timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                response = http.post(
                    "/v1/local/inventory/SKU-00001/update", json={"delta": -1, "operation_id": op}
                )
                if response.status_code == 200:
                    return time.time()
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise TimeoutError(f"no update answered within {timeout} s")


def _trigger(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/v1/local/sync/trigger").raise_for_status()


def _first_at_central(sim: SimAdmin, mark: int, *, timeout: float) -> float:
    """central_sim's journal time of the first entry after `mark`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = sim._call("GET", "/_sim/journal", params={"after_seq": mark, "limit": 1})[
            "entries"
        ]
        if entries:
            return datetime.fromisoformat(entries[0]["at"]).timestamp()
        time.sleep(0.05)
    raise TimeoutError(f"nothing reached central within {timeout} s")


def one_recovery(
    template: Path, workdir: Path, central: CentralSim, *, broker_url: str, timeout: float
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    copy_s = history.copy_to(template, workdir / "store.db")
    queue = f"store.sync.recovery-{uuid.uuid4().hex[:8]}"
    env = _env(workdir, central, broker_url, queue)
    sim = central.admin()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started: list[Process] = []
    try:
        # 1. Running, then killed mid-run.
        mark = sim.journal_tail()
        api, worker = _processes(workdir, env, port, "before")
        started += [api.start(), worker.start()]
        _first_update(url, timeout=timeout)
        _trigger(url)
        _first_at_central(sim, mark, timeout=timeout)
        _until_in_flight(workdir / "store.db", timeout=5.0)  # the kill lands mid-batch
        api.kill()
        worker.kill()
        with sqlite_ro(workdir / "store.db") as conn:
            in_flight = conn.execute(
                "SELECT count(*) FROM changes WHERE status = 'in_flight'"
            ).fetchone()[0]
            lease = conn.execute("SELECT holder FROM leases").fetchone()
        mark = sim.journal_tail()
        # 2. Started again together.
        api, worker = _processes(workdir, env, port, "after")
        t0 = time.time()
        started += [api.start(), worker.start()]
        answered = _first_update(url, timeout=timeout)
        _trigger(url)
        at_central = _first_at_central(sim, mark, timeout=timeout)
    finally:
        for process in reversed(started):
            process.stop()
        delete_queue_quietly(broker_url, queue)
    return {
        "copy_seconds": copy_s,
        "in_flight_at_kill": in_flight,
        "lease_held_at_kill": None if lease is None else lease[0],
        "first_update_s": answered - t0,
        "first_batch_at_central_s": at_central - t0,
    }


def _until_in_flight(database: Path, *, timeout: float) -> None:
    """Return once a batch is in flight (claimed, not recorded), or after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite_ro(database) as conn:
            if conn.execute("SELECT 1 FROM changes WHERE status = 'in_flight' LIMIT 1").fetchone():
                return
        time.sleep(0.01)


class sqlite_ro:  # a read-only connection as a context manager
    def __init__(self, path: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()


def step_costs(template: Path, workdir: Path) -> dict[str, Any]:
    """Each start-up step's time on a copy of the template, and Alembic with nothing to do."""
    from loadtests.startup_audit import audit
    from store_service.config import Settings
    from store_service.storage import db

    database = workdir / "audit.db"
    history.copy_to(template, database)
    settings = Settings(database_url=f"sqlite:///{database}")
    started = time.perf_counter()
    db.migrate(settings)
    migrate_s = time.perf_counter() - started
    conn = db.connect(database)
    try:
        audit(conn)  # the first pass reads the pages from the disk; the second is timed
        steps = {step.name: step.seconds for step in audit(conn)}
    finally:
        conn.close()
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    return {"migrate_nothing_to_do_s": migrate_s, "steps_s": steps}


def render(report: dict[str, Any]) -> str:
    update, central = report["first_update_s"], report["first_batch_at_central_s"]
    migrate_ms = report["steps"]["migrate_nothing_to_do_s"] * 1000

    def verdict(key: str, target: float) -> str:
        over = sum(run[key] > target for run in report["runs"])
        median = "met" if report[key]["median"] <= target else "missed"
        return f"{median} (median); {over} of {len(report['runs'])} repetitions over"

    lines = [
        f"(f) recovery after kill -9, {report['started_at']} on {report['machine']}",
        f"{report['pending']:,} pending, {report['final']:,} final ({report['ids']} ids), "
        f"{report['repeat']} repetitions, median [min-max]; {NOTE}",
        "",
        "| measure (from process start) | seconds | target | |",
        "|---|---|---|---|",
        f"| first acknowledged update | {update['median']:.2f} [{update['min']:.2f}-"
        f"{update['max']:.2f}] | <= {TARGET_UPDATE_S:g} | "
        f"{verdict('first_update_s', TARGET_UPDATE_S)} |",
        f"| first batch at central | {central['median']:.2f} [{central['min']:.2f}-"
        f"{central['max']:.2f}] | <= {TARGET_CENTRAL_S:g} | "
        f"{verdict('first_batch_at_central_s', TARGET_CENTRAL_S)} |",
        "",
        f"at the kill: {[r['in_flight_at_kill'] for r in report['runs']]} changes in flight, "
        f"lease held: {[bool(r['lease_held_at_kill']) for r in report['runs']]}",
        f"template: built in {report['template_build_s'] or 0:.0f} s (0: cached), "
        f"copied in {spread([r['copy_seconds'] for r in report['runs']])['median']:.1f} s",
        "",
        "| start-up step, on a copy (warm) | ms |",
        "|---|---|",
        f"| Alembic upgrade, nothing to migrate | {migrate_ms:.0f} |",
        *(
            f"| {name} | {seconds * 1000:.1f} |"
            for name, seconds in report["steps"]["steps_s"].items()
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from loadtests.sync_soon_bench import broker_available, default_broker_url

    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recovery_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--final", type=int, default=10_000_000)
    parser.add_argument("--ids", choices=history.ID_KINDS, default="v4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="per wait, seconds")
    parser.add_argument("--broker-url", default=None)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    args = parser.parse_args(argv)
    broker_url = args.broker_url or default_broker_url()
    if not broker_available(broker_url):
        print(
            f"RabbitMQ is not reachable at {broker_url}: bash scripts/services/rabbitmq.sh ensure"
        )
        return 2
    spec = history.HistorySpec(args.final, args.pending, args.ids)
    template, build_s = history.template(spec)
    report: dict[str, Any] = {
        "bench": "f-recovery",
        **report_header("python -m loadtests.recovery_bench", argv, NOTE),
        "pending": args.pending,
        "final": args.final,
        "ids": args.ids,
        "repeat": args.repeat,
        "template_build_s": build_s,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="store-recovery-", dir=REPO / "reports") as tmp:
        workdir = Path(tmp)
        report["steps"] = step_costs(template, workdir)
        central = start_central(workdir / "central")
        try:
            for rep in range(args.repeat):
                run = one_recovery(
                    template, workdir / f"rep-{rep}", central, broker_url=broker_url,
                    timeout=args.timeout,
                )  # fmt: skip
                report["runs"].append(run)
                print(
                    f"  rep {rep + 1}: first update {run['first_update_s']:.2f} s, first batch "
                    f"at central {run['first_batch_at_central_s']:.2f} s "
                    f"({run['in_flight_at_kill']} in flight at the kill)",
                    flush=True,
                )
                for path in (workdir / f"rep-{rep}").glob("store.db*"):
                    path.unlink()  # gigabytes each
        finally:
            central.stop()
    for key in ("first_update_s", "first_batch_at_central_s"):
        report[key] = spread([run[key] for run in report["runs"]])
    report["targets"] = {
        "first_update_s": TARGET_UPDATE_S,
        "first_batch_at_central_s": TARGET_CENTRAL_S,
        "met_by_median": report["first_update_s"]["median"] <= TARGET_UPDATE_S
        and report["first_batch_at_central_s"]["median"] <= TARGET_CENTRAL_S,
        "met_by_every_repetition": report["first_update_s"]["max"] <= TARGET_UPDATE_S
        and report["first_batch_at_central_s"]["max"] <= TARGET_CENTRAL_S,
    }
    path = write_report(report, args.out, "recovery")
    print()
    print(render(report))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
