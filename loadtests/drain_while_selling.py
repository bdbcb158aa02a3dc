"""Benchmark (e): drain a day's backlog while the tills keep selling.

A backlog of pending changes (`drain_bench.build_backlog`, 100,000 by default) is drained by the
REAL worker — a Celery worker (threads pool, as `bin/run_local.py` runs it) fed by a real
RabbitMQ, `run_sync` through the real task — into a real central_sim, while updates hit the
store API that shares the SQLite file, its write lock and the machine's cores. Each scenario
gets its own copy of the backlog database, a fresh central_sim, API and worker:

- drain + paced: updates at `--paced-rate` (300/s) from an own asyncio client (below)
- drain + saturating: wrk with `update.lua` at 64 connections, as (b)
- drain alone
- updates alone, paced and saturating, on a copy of the same backlog database (no drain)

The drain rate is the backlog over the time from just before the trigger (`POST
/v1/local/sync/trigger`, which publishes the task) to when central_sim's stats count the whole
backlog applied (claims go by change id, so the backlog is sent before the updates made during
the drain). The load runs until then; wrk is stopped with SIGINT and prints its summary.

The paced client (`python -m loadtests.drain_while_selling paced ...`, its own process so its
CPU is not the orchestrator's) is open-loop: request n is due at start + n/rate whatever the
answers before it did, goes out on a free keep-alive connection (up to 64; a new one is opened
when all are busy), and its latency is measured from its scheduled time, not from when it was
sent — so a stall shows up in every request it delays (no coordinated omission). wrk's own
latencies (saturating) are measured from the send, as in (b).

SQLite write-lock waits come from both processes' Prometheus metrics
(`store_sqlite_write_lock_wait_seconds`, contended acquisitions only), read after each scenario.
"""

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.broker import delete_queue_quietly
from harness.central import CentralSim, start_central
from harness.commands import STORE_APP, celery_argv, uvicorn_argv
from harness.processes import Process, free_port, http_ok, wait_until
from harness.store import store_env, wait_worker_ready
from loadtests import wrk
from loadtests.reports import fmt_spread as _fmt
from loadtests.reports import spread

REPO = Path(__file__).resolve().parent.parent
SKUS = 1000
MAX_PHASE_SECONDS = 300.0  # a drain that takes longer is reported as unfinished
SCENARIOS = ("paced_alone", "saturating_alone", "drain_alone", "drain_paced", "drain_saturating")

# The targets of (e), judged on the medians.
TARGETS = {
    "paced_p99_ms": 25.0,  # at 300 updates/s during the drain
    "paced_drain_per_s": 4000.0,
    "saturating_ratio": 0.6,  # updates/s during the drain over updates/s alone, per repetition
    "saturating_p99_ms": 60.0,
    "saturating_drain_per_s": 2000.0,
}


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    central: CentralSim
    api: Process
    worker: Process
    api_url: str
    worker_metrics_url: str
    queue: str
    broker_url: str

    def stop(self) -> None:
        for process in (self.worker, self.api):
            process.stop(timeout=15)
        self.central.stop()
        delete_queue_quietly(self.broker_url, self.queue)


def start_stack(workdir: Path, database: Path, *, broker_url: str, log_level: str) -> Stack:
    """central_sim, the store API (as the harness serves it) and a worker on `database`."""
    log_dir = workdir / "logs"
    central = start_central(workdir)
    queue = f"store.sync.bench-{uuid.uuid4().hex[:8]}"
    api_port, metrics_port = free_port(), free_port()
    env = store_env(
        database,
        STORE_BROKER_URL=broker_url,
        STORE_SYNC_QUEUE=queue,
        STORE_CENTRAL_URL=central.base_url,
        STORE_CENTRAL_SERVICE_NAME="inventory-service",
        STORE_CENTRAL_SERVICE_SECRET=central.services["inventory-service"],
        STORE_ALLOW_NEGATIVE_STOCK="true",  # sells on unseeded SKUs must not be 409s here
        STORE_LOG_LEVEL=log_level,  # the API logs one line per update, as in (b)
        STORE_SYNC_TIME_BUDGET_SECONDS=str(MAX_PHASE_SECONDS),  # one run drains it all
        STORE_WORKER_METRICS_PORT=str(metrics_port),
    )
    api = Process("store-api", uvicorn_argv(STORE_APP, api_port), env=env, log_dir=log_dir)
    node = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    worker = Process(
        "worker",
        # As bin/run_local.py runs it: the threads pool, one task at a time.
        celery_argv(
            "worker",
            "--pool=threads",
            "--concurrency",
            "1",
            "--without-mingle",
            "--without-gossip",
            "-n",
            node,
        ),
        env={**env, "STORE_LOG_LEVEL": "INFO"},  # its "ready" line is how we know it is up
        log_dir=log_dir,
    )
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        api.start()  # it migrates the database: the worker starts after it answers
        wait_until(
            "the store API", http_ok(f"{api_url}/v1/local/inventory"), timeout=90, process=api
        )
        worker.start()
        wait_worker_ready(worker)
    except BaseException:
        for process in (worker, api):
            process.stop()
        central.stop()
        raise
    return Stack(
        central,
        api,
        worker,
        api_url,
        f"http://127.0.0.1:{metrics_port}/metrics",
        queue,
        broker_url,
    )


def copy_database(source: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = source.with_name(source.name + suffix)
        if src.exists():
            shutil.copy(src, dest_dir / (source.name + suffix))
    return dest_dir / source.name


# --- measuring ---------------------------------------------------------------------------------


def _cpu(process: Process) -> float:
    """The process's CPU seconds so far; 0 once it is gone (the scenario is reported anyway)."""
    with contextlib.suppress(FileNotFoundError):
        return wrk.cpu_seconds(process.pid or 0)
    return 0.0


def lock_waits(metrics_text: str) -> dict[str, float]:
    """Count, sum and p50/p90/p99 (interpolated within Prometheus buckets) of the contended
    write-lock acquisitions in one /metrics text."""
    buckets: list[tuple[float, float]] = []
    count = total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "store_sqlite_write_lock_wait_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))  # "+Inf" is inf
            elif sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    result = {"count": count, "sum_s": total}
    for q in (0.5, 0.9, 0.99):
        result[f"p{round(q * 100)}_ms"] = _bucket_quantile(sorted(buckets), count, q) * 1000
    return result


def _bucket_quantile(buckets: list[tuple[float, float]], count: float, q: float) -> float:
    if count == 0:
        return 0.0
    rank, low, seen = q * count, 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(le):
                return low
            inside = cumulative - seen
            return low + (le - low) * ((rank - seen) / inside if inside else 1.0)
        low, seen = le, cumulative
    return low


def metrics_text(url: str) -> str:
    try:
        return httpx.get(url, timeout=10).text
    except httpx.HTTPError:
        return ""


def central_applied(central: CentralSim) -> int:
    totals = central.admin().stats()["totals"]
    return int(totals.get("applied", 0)) + int(totals.get("duplicate", 0))


def trigger_and_wait(stack: Stack, backlog: int) -> dict[str, Any]:
    """Publish a sync run; wait until central counts the whole backlog applied."""
    started = time.monotonic()
    httpx.post(f"{stack.api_url}/v1/local/sync/trigger", timeout=30).raise_for_status()
    applied = 0
    while time.monotonic() - started < MAX_PHASE_SECONDS:
        applied = central_applied(stack.central)
        if applied >= backlog:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - started
    done = applied >= backlog
    return {
        "drained": done,
        "drain_seconds": seconds,
        "drain_per_s": (backlog if done else applied) / seconds,
        "applied_at_end": applied,
    }


# --- load --------------------------------------------------------------------------------------


def start_paced(url: str, *, rate: float, max_seconds: float, tag: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-m",
        "loadtests.drain_while_selling",
        "paced",
        "--url",
        url,
        "--rate",
        str(rate),
        "--max-seconds",
        str(max_seconds),
        "--tag",
        tag,
    ]
    return subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def start_wrk(url: str, *, connections: int, max_seconds: float, tag: str) -> subprocess.Popen[str]:
    argv = wrk.argv(
        url, threads=2, connections=connections, seconds=max_seconds, skus=SKUS, tag=tag
    )
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_load(proc: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    """Stop the load generator (SIGINT: both print their summary) and read it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    if kind == "wrk":
        result = wrk.summary(out)
        return {
            "updates": result.requests,
            "seconds": result.seconds,
            "updates_per_s": result.per_second,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "max_ms": result.max_ms,
            "errors": result.errors,
        }
    lines = out.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the paced client printed nothing:\n{err[-2000:]}")
    return dict(json.loads(lines[-1]))


# --- one scenario ------------------------------------------------------------------------------


def run_scenario(
    name: str, workdir: Path, backlog_db: Path, *, args: argparse.Namespace, backlog: int
) -> dict[str, Any]:
    database = copy_database(backlog_db, workdir)
    stack = start_stack(workdir, database, broker_url=args.broker_url, log_level=args.log_level)
    result: dict[str, Any] = {"scenario": name}
    try:
        tag = f"{name}-{secrets.token_hex(3)}"
        api_cpu, worker_cpu = _cpu(stack.api), _cpu(stack.worker)
        started = time.monotonic()
        load: subprocess.Popen[str] | None = None
        kind = "wrk" if "saturating" in name else "paced"
        if name != "drain_alone":
            cap = MAX_PHASE_SECONDS if name.startswith("drain") else args.e_duration
            if kind == "wrk":
                load = start_wrk(
                    stack.api_url, connections=args.connections, max_seconds=cap, tag=tag
                )
            else:
                load = start_paced(stack.api_url, rate=args.paced_rate, max_seconds=cap, tag=tag)
            time.sleep(0.5)  # the load is running before the drain starts
        if name.startswith("drain"):
            result.update(trigger_and_wait(stack, backlog))
        else:
            time.sleep(args.e_duration)
        if load is not None:
            result["updates"] = finish_load(load, kind)
        wall = time.monotonic() - started
        result["api_cpu_share"] = (_cpu(stack.api) - api_cpu) / wall
        result["worker_cpu_share"] = (_cpu(stack.worker) - worker_cpu) / wall
        result["lock_waits"] = {
            "api": lock_waits(metrics_text(f"{stack.api_url}/metrics")),
            "worker": lock_waits(metrics_text(stack.worker_metrics_url)),
        }
    finally:
        stack.stop()
    return result


def bench_drain_while_selling(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from loadtests.drain_bench import build_backlog

    workdir.mkdir(parents=True, exist_ok=True)
    backlog_db = workdir / "backlog" / "store.db"
    print(f"  (e) writing a {args.e_backlog:,}-change backlog through the writer...", flush=True)
    build_seconds = build_backlog(backlog_db, changes=args.e_backlog, skus=SKUS)
    chosen = [name for name in SCENARIOS if name in (args.e_scenarios or SCENARIOS)]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for rep in range(args.repeat):
        for name in chosen:
            where = workdir / f"{name}-{rep}"
            result = run_scenario(name, where, backlog_db, args=args, backlog=args.e_backlog)
            runs[name].append(result)
            print(f"  (e) rep {rep + 1} {_line(result)}", flush=True)
            shutil.rmtree(where, ignore_errors=True)
    summary = summarize(runs)
    return {
        "backlog": args.e_backlog,
        "skus": SKUS,
        "backlog_build_seconds": build_seconds,
        "paced_rate": args.paced_rate,
        "paced_client": "open-loop asyncio client, latency from each request's scheduled time",
        "connections": args.connections,
        "alone_seconds": args.e_duration,
        "summary": summary,
        "targets": judge(summary),
        "runs": runs,
    }


def _line(r: dict[str, Any]) -> str:
    parts = [f"{r['scenario']:17}"]
    if "drain_per_s" in r:
        parts.append(f"drain {r['drain_per_s']:7,.0f}/s ({r['drain_seconds']:.1f} s)")
    if "updates" in r:
        u = r["updates"]
        parts.append(
            f"updates {u['updates_per_s']:6,.0f}/s p50 {u['p50_ms']:6.1f} "
            f"p99 {u['p99_ms']:6.1f} ms err {u['errors']}"
        )
    w = r["lock_waits"]
    parts.append(
        f"lock waits api {w['api']['count']:.0f} p90 {w['api']['p90_ms']:.1f} ms, "
        f"worker {w['worker']['count']:.0f} p90 {w['worker']['p90_ms']:.1f} ms"
    )
    return " ".join(parts)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, results in runs.items():
        s: dict[str, Any] = {}
        if results and "drain_per_s" in results[0]:
            s["drain_per_s"] = spread([r["drain_per_s"] for r in results])
            s["all_drained"] = all(r["drained"] for r in results)
        if results and "updates" in results[0]:
            for key in ("updates_per_s", "p50_ms", "p99_ms"):
                s[key] = spread([r["updates"][key] for r in results])
            s["errors"] = sum(r["updates"]["errors"] for r in results)
        for who in ("api", "worker"):
            s[f"lock_wait_{who}_p90_ms"] = spread([r["lock_waits"][who]["p90_ms"] for r in results])
            s[f"lock_wait_{who}_count"] = spread([r["lock_waits"][who]["count"] for r in results])
        out[name] = s
    if "drain_saturating" in runs and "saturating_alone" in runs:
        sat, alone = runs["drain_saturating"], runs["saturating_alone"]
        ratios = [
            d["updates"]["updates_per_s"] / a["updates"]["updates_per_s"]
            for d, a in zip(sat, alone, strict=True)
            if a["updates"]["updates_per_s"]
        ]
        out["drain_saturating"]["ratio_to_alone"] = spread(ratios)
    return out


def judge(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nothing: dict[str, Any] = {"median": math.nan}
    paced = summary.get("drain_paced", {})
    sat = summary.get("drain_saturating", {})
    paced = {"p99_ms": nothing, "drain_per_s": nothing, **paced}
    sat = {"ratio_to_alone": nothing, "p99_ms": nothing, "drain_per_s": nothing, **sat}
    checks = {
        "300/s: update p99 <= 25 ms": (paced["p99_ms"]["median"], "<=", TARGETS["paced_p99_ms"]),
        "300/s: drain >= 4,000 changes/s": (
            paced["drain_per_s"]["median"],
            ">=",
            TARGETS["paced_drain_per_s"],
        ),
        "saturating: updates >= 0.6 x alone": (
            sat["ratio_to_alone"]["median"],
            ">=",
            TARGETS["saturating_ratio"],
        ),
        "saturating: update p99 <= 60 ms": (
            sat["p99_ms"]["median"],
            "<=",
            TARGETS["saturating_p99_ms"],
        ),
        "saturating: drain >= 2,000 changes/s": (
            sat["drain_per_s"]["median"],
            ">=",
            TARGETS["saturating_drain_per_s"],
        ),
    }
    verdicts = {}
    for label, (value, op, limit) in checks.items():
        met = value <= limit if op == "<=" else value >= limit  # never, when not measured
        verdicts[label] = {"value": value, "limit": limit, "met": bool(met)}
    return verdicts


def render(e: dict[str, Any]) -> list[str]:

    s = e["summary"]
    lines = [
        "",
        f"(e) drain {e['backlog']:,} changes while selling: real worker (Celery, RabbitMQ), "
        f"central_sim, store API on one SQLite file; paced {e['paced_rate']:.0f}/s "
        f"({e['paced_client']}), saturating wrk {e['connections']} connections; median [min-max]",
        "",
        "| scenario | drain changes/s | updates/s | p50 ms | p99 ms | errors | "
        "lock wait p90 ms api / worker (contended count) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        if name not in s:
            continue
        r = s[name]
        drain = _fmt(r["drain_per_s"]) if "drain_per_s" in r else ""
        if "ratio_to_alone" in r:
            drain += f"; updates {_fmt(r['ratio_to_alone'], 2)} x alone"
        upd = (
            [_fmt(r["updates_per_s"]), _fmt(r["p50_ms"], 1), _fmt(r["p99_ms"], 1), str(r["errors"])]
            if ("updates_per_s" in r)
            else ["", "", "", ""]
        )
        waits = (
            f"{_fmt(r['lock_wait_api_p90_ms'], 1)} / {_fmt(r['lock_wait_worker_p90_ms'], 1)} "
            f"({r['lock_wait_api_count']['median']:,.0f} / "
            f"{r['lock_wait_worker_count']['median']:,.0f})"
        )
        lines.append(f"| {name.replace('_', ' ')} | {drain} | {' | '.join(upd)} | {waits} |")
    lines += ["", "| (e) target | median | met |", "|---|---|---|"]
    for label, v in e["targets"].items():
        verdict = "not measured" if math.isnan(v["value"]) else "met" if v["met"] else "MISSED"
        lines.append(f"| {label} | {v['value']:,.2f} | {verdict} |")
    return lines


# --- the paced client (its own process) --------------------------------------------------------


async def _paced(url: str, *, rate: float, max_seconds: float, tag: str) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    latencies: list[float] = []
    status_errors = failures = 0
    kinds: Counter[str] = Counter()  # what the errors were: an HTTP status or an exception's name
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int, due: float) -> None:
        nonlocal opened, status_errors, failures
        sku = f"SKU-{n * 7919 % SKUS + 1:05d}"
        body = json.dumps({"delta": -1 - n % 3, "operation_id": f"{tag}-{n}"}).encode()
        request = (
            f"POST /v1/local/inventory/{sku}/update HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        # A kept-alive connection the server closed while idle (its keep-alive timeout) fails
        # before any answer: sent again once on a new connection, as HTTP clients do.
        reused = bool(idle)
        conn = idle.pop() if idle else None
        for attempt in (1, 2):
            try:
                if conn is None:
                    opened += 1
                    conn = await asyncio.open_connection(host, int(port))
                reader, writer = conn
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (OSError, asyncio.IncompleteReadError) as exc:
                if conn is not None:
                    conn[1].close()
                conn = None
                if attempt == 1 and reused:
                    continue
                failures += 1
                kinds[type(exc).__name__] += 1
                return
            except (TimeoutError, ValueError) as exc:
                failures += 1
                kinds[type(exc).__name__] += 1
                writer.close()
                return
            break
        try:
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(loop.time() - due)
            if status >= 300:
                status_errors += 1
                kinds[str(status)] += 1
            idle.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            failures += 1
            kinds[type(exc).__name__] += 1
            writer.close()

    started = loop.time()
    n = 0
    while not stop.is_set() and n < rate * max_seconds:
        due = started + n / rate
        delay = due - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        task = loop.create_task(one(n, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    seconds = loop.time() - started
    if pending:
        await asyncio.wait(pending, timeout=15)
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "updates": len(latencies),
        "sent": n,
        "seconds": seconds,
        "updates_per_s": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        # Not 2xx, failed on the socket, or still unanswered 15 s after the last was sent.
        "errors": status_errors + failures + max(0, n - len(latencies) - failures),
        "error_kinds": dict(kinds),
        "connections_opened": opened,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.drain_while_selling")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("paced", help="(internal) the open-loop paced update client")
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--tag", default="paced")
    args = parser.parse_args()
    result = asyncio.run(
        _paced(args.url, rate=args.rate, max_seconds=args.max_seconds, tag=args.tag)
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
