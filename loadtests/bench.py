"""The benchmark: one command, one run, one table (printed and written as JSON).

    uv run python -m loadtests.bench                   # (a) to (e), 3 repetitions
    uv run python -m loadtests.bench --only abcd       # (a) (b) (b') (c) (d): not (e)
    uv run python -m loadtests.bench --only e --repeat 3   # drain while selling
    uv run python -m loadtests.bench --only fg          # recovery and growth (10M-row histories)
    uv run python -m loadtests.bench --skip-drain --duration 10 --repeat 5
    uv run python -m loadtests.bench --compare-ref HEAD~3   # also bench an older commit's server

Needs Debian's `wrk` on PATH (`apt-get install -y wrk`). Everything is loopback traffic; the
load generator and the server share the machine's cores, which the table says next to every
figure (wrk's own CPU share is measured from its rusage).

(a) ceiling: `POST /_bench/noop/{sku}` (see loadtests/bench_app.py: the real `create_app()` app,
    same middleware, logging and uvicorn worker, plus one trivial pydantic-body route).
(b) update:  `POST /v1/local/inventory/{sku}/update`, unique operation_ids over 1,000 SKUs,
    64 connections, durable commits (WAL + synchronous=FULL), INFO logging to a file.
(b') the same with random UUIDv4-shaped operation_ids (what clients drawing a fresh UUID per
    change send): their unique index takes each new id at a random place.
    (a), (b) and (b') hit the same server process, interleaved, repeated N times: medians and
    ranges.
(c) drain:   a 100,000-change backlog written through the real Writer + `apply_update`, pushed
    to a real central_sim subprocess by `run_sync` in a child process (its peak RSS is the
    drain's), against sending a sample one by one to `/adjust` (extrapolated: said so).
(d) sync soon: an update's answer to central applying it, at 100 updates/s (real worker).
(e) drain while selling (loadtests/drain_while_selling.py): the backlog drained by the real
    worker while updates arrive paced (300/s) and saturating (64 connections), against each
    path alone, in the same run.
"""

import argparse
import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from harness.processes import Process, free_port, http_ok, wait_until
from loadtests import wrk
from loadtests.reports import Spread, report_header, spread, write_report
from loadtests.reports import fmt_spread as _fmt
from store_service.api.serve import EVENT_LOOP

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kind:
    """One measured kind: what it posts (path prefix, operation_id shape: see update.lua) and
    its row in the table."""

    prefix: str
    operation_ids: str
    measure: str


KINDS = {
    "ceiling": Kind("/_bench/noop", "sequential", "(a) trivial POST"),
    "update": Kind("/v1/local/inventory", "sequential", "(b) update"),
    "update-uuid": Kind("/v1/local/inventory", "random", "(b') update, UUIDs"),
}
SHARED_NOTE = "load generator and server share the same 2 cores (loopback)"


# --- processes -----------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    process: Process
    url: str
    database: Path

    def stop(self) -> None:
        self.process.stop(timeout=15)


def start_store(label: str, workdir: Path, code_dir: Path, *, log_level: str) -> Server:
    """uvicorn (one worker, the protocol and event loop `serve` uses) on a fresh DB."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "store.db"
    port = free_port()
    env = {
        "STORE_DATABASE_URL": f"sqlite:///{database}",
        "STORE_DATA_DIR": str(workdir),
        "STORE_LOG_LEVEL": log_level,
        "STORE_ALLOW_NEGATIVE_STOCK": "true",  # sells on unseeded SKUs must not be 409s here
        "STORE_MIGRATE_ON_STARTUP": "true",
    }
    # As each commit serves: with the edge protocol (h11 + limits) where it has one, else
    # uvicorn's default (httptools), so --compare-ref measures the protocol choice too.
    server = "http_edge.server" if (code_dir / "http_edge" / "server.py").exists() else "uvicorn"
    argv = [
        sys.executable,
        "-m",
        server,
        "--factory",
        "loadtests.bench_app:create_bench_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--loop",
        EVENT_LOOP,  # as `python -m store_service.serve` runs it
    ]
    process = Process("server", argv, env=env, log_dir=workdir, cwd=code_dir).start()
    url = f"http://127.0.0.1:{port}"
    wait_until("the store API", http_ok(f"{url}/v1/local/inventory"), timeout=60, process=process)
    return Server(label, process, url, database)


EXPORTED = ("store_service", "http_edge", "alembic.ini")


def export_ref(ref: str, dest: Path) -> Path:
    """The store API's code at an older commit (plus this bench app) in a folder, without git
    state: store_service, and the shared packages it imports where that commit has them."""
    present = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, *EXPORTED],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    blob = subprocess.run(
        ["git", "archive", "--format=tar", ref, *present],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "loadtests").mkdir(exist_ok=True)
    for name in ("__init__.py", "bench_app.py"):
        shutil.copy(REPO / "loadtests" / name, dest / "loadtests" / name)
    return dest


# --- wrk -------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    kind: str
    server: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    wrk_cpu_share: float  # of the whole machine (all cores)
    server_cpu_share: float
    server_cpu_us_per_request: float  # robust to other load on the machine, unlike req/s

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    server: Server, kind: str, *, duration: float, connections: int, threads: int, skus: int
) -> WrkRun:
    argv = wrk.argv(
        server.url,
        threads=threads,
        connections=connections,
        seconds=duration,
        skus=skus,
        tag=f"{kind}-{secrets.token_hex(4)}",
        prefix=KINDS[kind].prefix,
        operation_ids=KINDS[kind].operation_ids,
    )
    cores = os.cpu_count() or 1
    server_before = wrk.cpu_seconds(server.process.pid or 0)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wrk_cpu = 0.0  # wrk's CPU time at exec is ~0; we sample /proc until it exits
    assert proc.stdout is not None
    while proc.poll() is None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, IndexError):
            wrk_cpu = wrk.cpu_seconds(proc.pid)
        time.sleep(0.2)
    output = proc.stdout.read()
    wall = time.monotonic() - started
    server_cpu = wrk.cpu_seconds(server.process.pid or 0) - server_before
    result = wrk.summary(output.decode(errors="replace"))
    return WrkRun(
        kind=kind,
        server=server.label,
        requests=result.requests,
        seconds=result.seconds,
        non_2xx=result.non_2xx,
        socket_errors=result.socket_errors,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        wrk_cpu_share=wrk_cpu / wall / cores,
        server_cpu_share=server_cpu / wall / cores,
        server_cpu_us_per_request=server_cpu * 1e6 / max(1, result.requests),
    )


# --- summaries -------------------------------------------------------------------------------


@dataclass
class HttpSummary:
    label: str
    runs: list[WrkRun] = field(default_factory=list)

    def spread(self, attr: str) -> Spread:
        return Spread.of([getattr(r, attr) for r in self.runs])

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "rps": self.spread("rps").as_dict(),
            "p50_ms": self.spread("p50_ms").as_dict(),
            "p99_ms": self.spread("p99_ms").as_dict(),
            "non_2xx_total": sum(r.non_2xx for r in self.runs),
            "socket_errors_total": sum(r.socket_errors for r in self.runs),
            "wrk_cpu_share": self.spread("wrk_cpu_share").as_dict(),
            "server_cpu_share": self.spread("server_cpu_share").as_dict(),
            "server_cpu_us_per_request": self.spread("server_cpu_us_per_request").as_dict(),
            "runs": [{**r.__dict__, "rps": r.rps} for r in self.runs],
        }


def acknowledged_are_stored(server: Server, summaries: Sequence[HttpSummary]) -> dict[str, int]:
    """Every 2xx update is a row (more rows are fine: wrk stops with requests in flight)."""
    acked = sum(
        r.requests - r.non_2xx for s in summaries for r in s.runs if r.kind.startswith("update")
    )
    conn = sqlite3.connect(server.database)
    try:
        rows = conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    finally:
        conn.close()
    return {"acknowledged": acked, "rows": rows, "ok": int(rows >= acked)}


def bench_http(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    servers = [("current", REPO, args.log_level)]
    for index, ref in enumerate(args.compare_ref or []):
        code = export_ref(ref, workdir / f"ref-code-{index}")
        servers.insert(index, (ref, code, args.log_level))
    if args.also_log_level:
        level = args.also_log_level
        servers.append((f"current@{level}", REPO, level))
    started: list[Server] = []
    try:
        for label, code, level in servers:
            started.append(
                start_store(label, workdir / f"srv-{len(started)}", code, log_level=level)
            )
        summaries: dict[tuple[str, str], HttpSummary] = {}
        kinds = list(KINDS) if args.uuid_ids else ["ceiling", "update"]
        for server in started:  # warm-up: imports, first-request caches, page cache
            for kind in kinds:
                run_wrk(
                    server,
                    kind,
                    duration=2,
                    connections=args.connections,
                    threads=2,
                    skus=args.skus,
                )
        for rep in range(args.repeat):
            for server in started:
                for kind in kinds:
                    run = run_wrk(
                        server,
                        kind,
                        duration=args.duration,
                        connections=args.connections,
                        threads=2,
                        skus=args.skus,
                    )
                    summaries.setdefault(
                        (server.label, kind), HttpSummary(f"{server.label}/{kind}")
                    ).runs.append(run)
                    print(
                        f"  rep {rep + 1} {server.label:>10} {kind:11} {run.rps:8,.0f} req/s "
                        f"p50 {run.p50_ms:6.1f} ms p99 {run.p99_ms:6.1f} ms "
                        f"non-2xx {run.non_2xx} wrk cpu {run.wrk_cpu_share:.0%} "
                        f"server {run.server_cpu_us_per_request:.0f} us CPU/req",
                        flush=True,
                    )
        result: dict[str, Any] = {"servers": {}}
        for server in started:
            ceiling = summaries[(server.label, "ceiling")]
            measured = {kind: summaries[(server.label, kind)] for kind in kinds}
            entry: dict[str, Any] = {kind: summary.as_dict() for kind, summary in measured.items()}
            for kind, summary in measured.items():
                if kind != "ceiling":  # the ratio per repetition, as both ran side by side
                    ratios = [
                        u.rps / c.rps for u, c in zip(summary.runs, ceiling.runs, strict=True)
                    ]
                    entry[f"{kind}_to_ceiling"] = spread(ratios)
            entry["durability_check"] = acknowledged_are_stored(server, list(measured.values()))
            result["servers"][server.label] = entry
        return result
    finally:
        for server in started:
            server.stop()


# --- the table -------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    lines = [
        f"benchmark {report['started_at']} on {report['machine']} ({SHARED_NOTE})",
        f"{report['repeat']} repetitions x {report['duration_s']} s, {report['connections']} "
        "connections, median [min-max]",
    ]
    if report.get("http"):
        lines += [
            "",
            "| server | measure | req/s | p50 ms | p99 ms | non-2xx | ratio to (a) | wrk CPU | "
            "server CPU | server CPU us/req |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    for label, s in report.get("http", {}).get("servers", {}).items():
        for key, kind in KINDS.items():
            if key not in s:
                continue
            name = kind.measure
            d = s[key]
            ratio = _fmt(s[f"{key}_to_ceiling"], 2) if key != "ceiling" else "1"
            lines.append(
                f"| {label} | {name} | {_fmt(d['rps'])} | {_fmt(d['p50_ms'], 1)} | "
                f"{_fmt(d['p99_ms'], 1)} | {d['non_2xx_total']} (+{d['socket_errors_total']} "
                f"socket) | {ratio} | {_fmt(d['wrk_cpu_share'], 2)} | "
                f"{_fmt(d['server_cpu_share'], 2)} | {_fmt(d['server_cpu_us_per_request'])} |"
            )
        check = s["durability_check"]
        lines.append(
            f"|  | durability | {check['acknowledged']:,} acknowledged updates, "
            f"{check['rows']:,} change rows | | | | | | | |"
        )
    drain = report.get("drain")
    if drain:
        lines += [
            "",
            "| (c) sync drain | value |",
            "|---|---|",
            f"| backlog | {drain['backlog']:,} changes ({drain['skus']:,} SKUs), "
            f"batch size {drain['batch_size']} |",
            f"| drain time | {drain['drain_seconds']:.1f} s |",
            f"| drain rate | {drain['changes_per_s']:,.0f} changes/s |",
            f"| outcomes | {drain['outcomes']} (stopped: {drain['stopped_reason']}) |",
            f"| drain process peak RSS | {drain['peak_rss_mb']:.0f} MB |",
            f"| one by one via /adjust | {drain['one_by_one_per_s']:,.0f} changes/s "
            f"(measured on {drain['one_by_one_sample']:,}, extrapolated to the backlog: "
            f"{drain['one_by_one_extrapolated_s']:.0f} s) |",
            f"| drain / one-by-one | {drain['ratio_to_one_by_one']:.1f}x |",
        ]
    soon = report.get("soon")
    if soon and "skipped" in soon:
        lines += ["", f"(d) sync soon: skipped, {soon['skipped']}"]
    elif soon:
        lines += [
            "",
            "| (d) sync soon: local answer -> applied by central | value |",
            "|---|---|",
            f"| load | {soon['rate_per_s']:.0f} updates/s for {soon['seconds']:.0f} s, one paced "
            f"client, debounce {soon['debounce_s']} s |",
            f"| reached central | {soon['reached_central']:,} of {soon['updates']:,} |",
            f"| latency median / p90 / p99 / max | {soon['median_s']:.2f} / {soon['p90_s']:.2f} / "
            f"{soon['p99_s']:.2f} / {soon['max_s']:.2f} s |",
        ]
    e = report.get("drain_while_selling")
    if e and "skipped" in e:
        lines += ["", f"(e) drain while selling: skipped, {e['skipped']}"]
    elif e:
        from loadtests.drain_while_selling import render as render_e

        lines += render_e(e)
    return "\n".join(lines)


def _sync_soon(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from loadtests.sync_soon_bench import bench_sync_soon, broker_available, default_broker_url

    broker_url = args.broker_url or default_broker_url()
    if not broker_available(broker_url):
        return {
            "skipped": f"RabbitMQ is not reachable at {broker_url}; start it with "
            "`bash scripts/services/rabbitmq.sh ensure` or pass --broker-url"
        }
    print(f"  (d) sync soon: {args.soon_rate:.0f} updates/s for {args.soon_seconds:.0f} s...")
    return bench_sync_soon(
        workdir,
        broker_url=broker_url,
        rate=args.soon_rate,
        seconds=args.soon_seconds,
        debounce=args.soon_debounce,
    )


def _drain_while_selling(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from loadtests.drain_while_selling import bench_drain_while_selling
    from loadtests.sync_soon_bench import broker_available, default_broker_url

    args.broker_url = args.broker_url or default_broker_url()
    if not broker_available(args.broker_url):
        return {
            "skipped": f"RabbitMQ is not reachable at {args.broker_url}; start it with "
            "`bash scripts/services/rabbitmq.sh ensure` or pass --broker-url"
        }
    return bench_drain_while_selling(workdir, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--log-level", default="INFO", help="server STORE_LOG_LEVEL")
    parser.add_argument(
        "--compare-ref",
        action="append",
        help="also bench the store_service of this git ref (repeatable)",
    )
    parser.add_argument(
        "--also-log-level", help="also bench the current code at this log level (logging's cost)"
    )
    parser.add_argument(
        "--no-uuid-ids",
        dest="uuid_ids",
        action="store_false",
        help="skip (b'), the update path with random UUID operation_ids",
    )
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000, help="STORE_SYNC_BATCH_SIZE")
    parser.add_argument("--one-by-one-sample", type=int, default=2000)
    parser.add_argument("--skip-soon", action="store_true", help="skip (d), sync-soon latency")
    parser.add_argument("--only-soon", action="store_true", help="run (d) alone")
    parser.add_argument("--soon-rate", type=float, default=100.0, help="(d) updates per second")
    parser.add_argument("--soon-seconds", type=float, default=30.0, help="(d) seconds of load")
    parser.add_argument("--soon-debounce", type=float, default=0.3, help="STORE_SYNC_SOON_SECONDS")
    parser.add_argument(
        "--broker-url", default=None, help="RabbitMQ for (d) and (e) (STORE_BROKER_URL)"
    )
    parser.add_argument(
        "--only",
        metavar="LETTERS",
        help="run only these parts, e.g. `abcd`, `e` or `fg` (a and b run together; b includes "
        "b'; f and g, loadtests.recovery_bench and loadtests.growth_bench with their defaults "
        "and this --repeat, print and write their own tables; not run unless named)",
    )
    parser.add_argument("--skip-e", action="store_true", help="skip (e), drain while selling")
    parser.add_argument("--e-backlog", type=int, default=100_000, help="(e) backlog size")
    parser.add_argument("--paced-rate", type=float, default=300.0, help="(e) paced updates/s")
    parser.add_argument(
        "--e-duration", type=float, default=10.0, help="(e) seconds of each update load alone"
    )
    parser.add_argument(
        "--e-scenarios",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help="(e) only these scenarios, comma-separated (paced_alone, saturating_alone, "
        "drain_alone, drain_paced, drain_saturating); targets not measured are said so",
    )
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    args = parser.parse_args(argv)
    if args.only_soon:
        args.only = "d"
    letters = set((args.only or "abcde").lower())
    if args.only:
        if not letters <= set("abcdefg"):
            parser.error("--only takes letters among a, b, c, d, e, f, g")
        args.skip_http = not letters & {"a", "b"}
        args.skip_drain = "c" not in letters
        args.skip_soon = "d" not in letters
        args.skip_e = "e" not in letters
    if not letters & set("abcde"):
        return _recovery_and_growth(letters, args)

    report: dict[str, Any] = {
        **report_header("python -m loadtests.bench", argv, SHARED_NOTE),
        "repeat": args.repeat,
        "duration_s": args.duration,
        "connections": args.connections,
    }
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_http:
            report["http"] = bench_http(args, workdir)
        if not args.skip_drain:
            from loadtests.drain_bench import bench_drain

            report["drain"] = bench_drain(
                workdir / "drain",
                backlog=args.backlog,
                batch_size=args.batch_size,
                sample=args.one_by_one_sample,
            )
        if not args.skip_soon:
            report["soon"] = _sync_soon(args, workdir / "soon")
        if not args.skip_e:
            report["drain_while_selling"] = _drain_while_selling(args, workdir / "e")
    path = write_report(report, args.out, "bench")
    print()
    print(render(report))
    print(f"\nwritten to {path}")
    return _recovery_and_growth(letters, args)


def _recovery_and_growth(letters: set[str], args: argparse.Namespace) -> int:
    """(f) and (g): their own modules (hours of templates to build the first time), each with
    its own table and JSON beside this run's."""
    status = 0
    common = ["--repeat", str(args.repeat), "--out", str(args.out)]
    if "f" in letters:
        from loadtests import recovery_bench

        broker = ["--broker-url", args.broker_url] if args.broker_url else []
        status |= recovery_bench.main([*common, *broker])
    if "g" in letters:
        from loadtests import growth_bench

        status |= growth_bench.main(common)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
