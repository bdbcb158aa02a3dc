"""Benchmark (g): the update path, the drain and the purge as the outbox history grows.

    uv run python -m loadtests.growth_bench                                # 0, 1M, 10M; v7, v4
    uv run python -m loadtests.growth_bench --sizes 0,100000 --backlog 20000 --repeat 1 \\
        --duration 3 --purge-rows 20000 --no-plot                          # the CI smoke

For each history size (final `synced` changes) and operation_id kind (loadtests/history.py
builds the databases once, as cached templates, and copies them):

- (b) update: the benchmark's update load (loadtests/bench.py: wrk, 64 connections, 2 threads,
  1,000 SKUs, durable commits) against a store on a copy: with `v7` history the new
  operation_ids are time-ordered too (`<run>-<thread>-<counter>`, sorted after every UUID), with
  `v4` history they are random UUIDv4s (bench (b')). The servers of every size run side by side
  and the repetitions interleave, so each size's ratio to the empty case is taken per
  repetition, under the same machine load.
- (c) drain: `backlog` pending changes (newer than the history) drained by `run_sync` to a real
  central_sim in a child process (loadtests/drain_bench.py's child).
- purge: a store whose history holds `purge_rows` expired final changes; update p99 while the
  worker's purge (`store_service.sync.purge.purge_expired`, in its own process, as the worker
  runs it) deletes them for the length of the load window (the paced purge may not finish in
  it: the table says how many it deleted), against the same load without a purge, and against
  the old purge (one transaction for everything).

Medians and ranges over `repeat`; targets met/missed in the table; JSON in reports/bench/ and
the curves in docs/img/growth.png.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness.central import start_central
from loadtests import history
from loadtests.bench import Server, WrkRun, run_wrk, start_store
from loadtests.reports import fmt_spread as _fmt
from loadtests.reports import report_header, spread, write_report

REPO = Path(__file__).resolve().parent.parent
PLOT = REPO / "docs" / "img" / "growth.png"
KIND_FOR_IDS = {"v7": "update", "v4": "update-uuid"}
TARGET_RATIO = 0.9  # (b) at the largest history within 10 % of the empty case
NOTE = "2 shared cores: wrk, the servers, central_sim and the drain, beside other engineers' runs"
CONNECTIONS = 64


def _wrk_dict(run: WrkRun) -> dict[str, Any]:
    return {**run.__dict__, "rps": run.rps}


# --- (b) -------------------------------------------------------------------------------------


def bench_updates(
    templates: dict[int, Path], ids: str, workdir: Path, *, repeat: int, duration: float
) -> dict[str, Any]:
    """One server per history size, interleaved repetitions; per size its runs and ratios."""
    kind = KIND_FOR_IDS[ids]
    servers: dict[int, Server] = {}
    try:
        for size, template in templates.items():
            folder = workdir / f"b-{ids}-{size}"
            history.copy_to(template, folder / "store.db")
            servers[size] = start_store(f"{ids}-{size}", folder, REPO, log_level="INFO")
        for server in servers.values():  # warm-up: imports, first-request caches, page cache
            run_wrk(server, kind, duration=2, connections=CONNECTIONS, threads=2, skus=1000)
        runs: dict[int, list[WrkRun]] = {size: [] for size in servers}
        for rep in range(repeat):
            for size, server in servers.items():
                run = run_wrk(
                    server, kind, duration=duration, connections=CONNECTIONS, threads=2, skus=1000
                )
                runs[size].append(run)
                print(
                    f"  (b) rep {rep + 1} {ids} history {size:>10,}: {run.rps:7,.0f} req/s "
                    f"p99 {run.p99_ms:6.1f} ms non-2xx {run.non_2xx} "
                    f"server {run.server_cpu_us_per_request:.0f} us CPU/req",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
        for size in templates:
            for path in (workdir / f"b-{ids}-{size}").glob("store.db*"):
                path.unlink()
    base = runs[min(runs)]
    result: dict[str, Any] = {}
    for size, size_runs in runs.items():
        ratios = [r.rps / b.rps for r, b in zip(size_runs, base, strict=True)]
        result[str(size)] = {
            "rps": spread([r.rps for r in size_runs]),
            "p99_ms": spread([r.p99_ms for r in size_runs]),
            "p50_ms": spread([r.p50_ms for r in size_runs]),
            "server_cpu_us_per_request": spread([r.server_cpu_us_per_request for r in size_runs]),
            "non_2xx_total": sum(r.non_2xx + r.socket_errors for r in size_runs),
            "ratio_to_empty": spread(ratios),
            "runs": [_wrk_dict(r) for r in size_runs],
        }
    return result


# --- (c) -------------------------------------------------------------------------------------


def drain_once(database: Path, workdir: Path, backlog: int) -> dict[str, Any]:
    """Drain the pending changes of `database` to a fresh central_sim (drain_bench's child).

    Fresh: every copy of a template carries the same operation_ids, and a central that saw them
    before would answer `duplicate` (a cheaper path) instead of applying them."""
    central_dir = workdir / "central"
    shutil.rmtree(central_dir, ignore_errors=True)
    central = start_central(central_dir)
    try:
        argv = [
            sys.executable, "-m", "loadtests.drain_bench", "child", "--database", str(database),
            "--central-url", central.base_url, "--batch-size", "1000",
        ]  # fmt: skip
        env = {
            **os.environ,
            "BENCH_CENTRAL_SECRET": central.services["inventory-service"],
            "STORE_LOG_LEVEL": "WARNING",
        }
        child = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
        if child.returncode != 0:
            raise RuntimeError(f"drain child failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        central.stop()
    if result["outcomes"] != {"applied": backlog}:
        raise RuntimeError(f"expected {backlog:,} changes applied, got {result['outcomes']}")
    return {
        "seconds": result["seconds"],
        "changes_per_s": backlog / result["seconds"],
        "outcomes": result["outcomes"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
    }


def bench_drains(
    templates: dict[int, Path], ids: str, workdir: Path, *, repeat: int, backlog: int
) -> dict[str, Any]:
    runs: dict[int, list[dict[str, Any]]] = {size: [] for size in templates}
    for rep in range(repeat):
        for size, template in templates.items():
            folder = workdir / f"c-{ids}-{size}"
            history.copy_to(template, folder / "store.db")
            run = drain_once(folder / "store.db", folder, backlog)
            runs[size].append(run)
            for path in folder.glob("store.db*"):
                path.unlink()
            print(
                f"  (c) rep {rep + 1} {ids} history {size:>10,}: {run['changes_per_s']:7,.0f} "
                f"changes/s ({run['outcomes']})",
                flush=True,
            )
    base = runs[min(runs)]
    return {
        str(size): {
            "changes_per_s": spread([r["changes_per_s"] for r in size_runs]),
            "ratio_to_empty": spread(
                [
                    r["changes_per_s"] / b["changes_per_s"]
                    for r, b in zip(size_runs, base, strict=True)
                ]
            ),
            "runs": size_runs,
        }
        for size, size_runs in runs.items()
    }


# --- the purge -------------------------------------------------------------------------------

PURGE_CHILD = """
import json, sys, time
from store_service.storage.db import connect
from store_service.sync.purge import purge_expired
conn = connect(__import__("pathlib").Path(sys.argv[1]))
started = time.monotonic()
purged = purge_expired(conn, retention=7 * 86400, batch=int(sys.argv[2]),
                       max_seconds=float(sys.argv[3]))
print(json.dumps({"purged": purged, "seconds": time.monotonic() - started}))
"""


def purge_under_load(
    template: Path, folder: Path, *, batch: int, duration: float, rows: int
) -> dict[str, Any]:
    """Update load without a purge, then the same load while the purge runs."""
    history.copy_to(template, folder / "store.db")
    server = start_store(f"purge-{batch}", folder, REPO, log_level="INFO")
    try:
        run_wrk(server, "update", duration=2, connections=CONNECTIONS, threads=2, skus=1000)
        quiet = run_wrk(
            server, "update", duration=duration, connections=CONNECTIONS, threads=2, skus=1000
        )
        outcome: dict[str, Any] = {}

        def purge() -> None:
            time.sleep(1.0)  # inside the load, after wrk's connections are up
            child = subprocess.run(
                [sys.executable, "-c", PURGE_CHILD, str(folder / "store.db"), str(batch),
                 str(max(1.0, duration - 2.0))],
                cwd=REPO, capture_output=True, text=True, timeout=900, check=True,
            )  # fmt: skip
            outcome.update(json.loads(child.stdout.strip().splitlines()[-1]))

        thread = threading.Thread(target=purge)
        thread.start()
        during = run_wrk(
            server, "update", duration=duration, connections=CONNECTIONS, threads=2, skus=1000
        )
        thread.join()
    finally:
        server.stop()
        for path in folder.glob("store.db*"):
            path.unlink()
    if not 0 < outcome.get("purged", 0) <= rows:
        raise RuntimeError(f"the purge deleted {outcome.get('purged')} of {rows} expired changes")
    return {
        "batch": batch,
        "purge_seconds": outcome["seconds"],
        "purged": outcome["purged"],
        "purged_per_s": outcome["purged"] / outcome["seconds"],
        "purge_within_load": outcome["seconds"] + 1.0 <= duration,
        "quiet": _wrk_dict(quiet),
        "during": _wrk_dict(during),
    }


def bench_purge(
    template: Path, workdir: Path, *, repeat: int, duration: float, rows: int
) -> dict[str, Any]:
    from store_service.sync.purge import BATCH

    modes = {"batched": BATCH, "one_transaction": 10**12}
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for rep in range(repeat):
        for mode, batch in modes.items():
            run = purge_under_load(
                template, workdir / f"purge-{mode}", batch=batch, duration=duration, rows=rows
            )
            runs[mode].append(run)
            print(
                f"  purge rep {rep + 1} {mode:15}: {run['purged']:,} purged in "
                f"{run['purge_seconds']:.1f} s; update p99 "
                f"{run['quiet']['p99_ms']:.1f} ms without, {run['during']['p99_ms']:.1f} ms during",
                flush=True,
            )
    return {
        mode: {
            "batch": modes[mode],
            "purge_seconds": spread([r["purge_seconds"] for r in mode_runs]),
            "purged": spread([r["purged"] for r in mode_runs]),
            "purged_per_s": spread([r["purged_per_s"] for r in mode_runs]),
            "p99_quiet_ms": spread([r["quiet"]["p99_ms"] for r in mode_runs]),
            "p99_during_ms": spread([r["during"]["p99_ms"] for r in mode_runs]),
            "rps_quiet": spread([r["quiet"]["rps"] for r in mode_runs]),
            "rps_during": spread([r["during"]["rps"] for r in mode_runs]),
            "timeouts_during": spread([r["during"]["socket_errors"] for r in mode_runs]),
            "p99_ratio": spread([r["during"]["p99_ms"] / r["quiet"]["p99_ms"] for r in mode_runs]),
            "runs": mode_runs,
        }
        for mode, mode_runs in runs.items()
    }


# --- report ----------------------------------------------------------------------------------


def _timeouts(mode: dict[str, Any]) -> dict[str, float]:
    # Requests wrk gave up on (10 s): they have no latency, so p99 alone hides a stall.
    return spread([r["during"]["socket_errors"] for r in mode["runs"]])


def render(report: dict[str, Any]) -> str:
    lines = [
        f"(g) growth, {report['started_at']} on {report['machine']}",
        f"{report['repeat']} repetitions, (b) {report['duration_s']:g} s each at {CONNECTIONS} "
        f"connections, median [min-max]; {NOTE}",
        "",
        "| ids | history | (b) req/s | (b) p99 ms | (b) ratio to empty | (c) changes/s | "
        "(c) ratio to empty |",
        "|---|---|---|---|---|---|---|",
    ]
    for ids, kinds in report["results"].items():
        for size in kinds["updates"]:
            b, c = kinds["updates"][size], kinds["drain"][size]
            lines.append(
                f"| {ids} | {int(size):,} | {_fmt(b['rps'])} | {_fmt(b['p99_ms'], 1)} | "
                f"{_fmt(b['ratio_to_empty'], 2)} | {_fmt(c['changes_per_s'])} | "
                f"{_fmt(c['ratio_to_empty'], 2)} |"
            )
    lines += ["", "| target | measured | |", "|---|---|---|"]
    largest = str(max(int(s) for s in next(iter(report["results"].values()))["updates"]))
    for ids, kinds in report["results"].items():
        ratio = kinds["updates"][largest]["ratio_to_empty"]["median"]
        verdict = "met" if ratio >= TARGET_RATIO else "missed"
        lines.append(
            f"| (b) {ids} at {int(largest):,} within 10 % of empty | ratio {ratio:.2f} | "
            f"{verdict} |"
        )
    purge = report.get("purge")
    if purge:
        lines += [
            "",
            f"purge of {report['purge_rows']:,} expired changes ({report['purge_ids']} ids) "
            f"under update load, {report['purge_duration_s']:g} s windows:",
            "",
            "| purge | purged | in s | p99 without ms | p99 during ms | p99 ratio | "
            "req/s without | req/s during | timeouts during (10 s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, m in purge.items():
            lines.append(
                f"| {mode} (batch {m['batch']:,}) | {_fmt(m['purged'])} | "
                f"{_fmt(m['purge_seconds'], 1)} | "
                f"{_fmt(m['p99_quiet_ms'], 1)} | {_fmt(m['p99_during_ms'], 1)} | "
                f"{_fmt(m['p99_ratio'], 2)} | {_fmt(m['rps_quiet'])} | {_fmt(m['rps_during'])} | "
                f"{_fmt(_timeouts(m))} |"
            )
    lines += ["", "templates: " + ", ".join(
        f"{name} {'cached' if s is None else f'built in {s:.0f} s'}"
        for name, s in report["templates"].items()
    )]  # fmt: skip
    return "\n".join(lines)


def _curve(ax: Any, data: dict[str, Any], key: str, label: str) -> None:
    sizes = sorted(int(s) for s in data)
    x = [max(s, 1e4) for s in sizes]  # the empty case drawn at 10^4 on the log axis
    spreads = [data[str(s)][key] for s in sizes]
    med = [d["median"] for d in spreads]
    yerr = [[d["median"] - d["min"] for d in spreads], [d["max"] - d["median"] for d in spreads]]
    ax.errorbar(x, med, yerr=yerr, marker="o", capsize=3, label=label)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for ids, kinds in report["results"].items():
        _curve(axes[0], kinds["updates"], "rps", ids)
        _curve(axes[1], kinds["updates"], "p99_ms", ids)
        _curve(axes[2], kinds["drain"], "changes_per_s", ids)
    titles = ["(b) updates/s", "(b) p99 ms", "(c) drain, changes/s"]
    for ax, title in zip(axes[:3], titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("final changes in the outbox (empty drawn at 10^4)")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.legend()
    purge = report.get("purge")
    if purge:
        labels, values = [], []
        for mode, m in purge.items():
            labels += [f"{mode}\nwithout", f"{mode}\nduring"]
            values += [m["p99_quiet_ms"]["median"], m["p99_during_ms"]["median"]]
        bars = axes[3].bar(
            labels, values, color=["#888", "#1f77b4", "#888", "#d62728"][: len(values)]
        )
        for bar, m in zip(bars[1::2], purge.values(), strict=True):
            timeouts = _timeouts(m)["median"]
            if timeouts:  # a stall: the requests stuck in it have no latency in wrk's p99
                axes[3].annotate(
                    f"{timeouts:.0f} requests\ntimed out (10 s)",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7, color="#d62728",
                )  # fmt: skip
        axes[3].set_title(f"update p99 ms, purge of {report['purge_rows']:,}")
        axes[3].tick_params(axis="x", labelsize=7)
    fig.suptitle(f"Growth, median and range of {report['repeat']} ({NOTE})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.growth_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="0,1000000,10000000", help="final changes, commas")
    parser.add_argument("--ids", default="v7,v4", help="operation_id kinds, commas")
    parser.add_argument("--backlog", type=int, default=100_000, help="(c) pending changes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per (b) run")
    parser.add_argument("--purge-rows", type=int, default=1_000_000)
    parser.add_argument("--purge-ids", choices=history.ID_KINDS, default="v4")
    parser.add_argument(
        "--purge-duration", type=float, default=30.0, help="seconds of load without and during"
    )
    parser.add_argument("--skip-purge", action="store_true")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "bench")
    parser.add_argument("--render", type=Path, help="print (and plot) an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.render:
        earlier = json.loads(args.render.read_text())
        if not args.no_plot:
            plot(earlier, args.plot)
        print(render(earlier))
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    id_kinds = args.ids.split(",")
    report: dict[str, Any] = {
        "bench": "g-growth",
        **report_header("python -m loadtests.growth_bench", argv, NOTE),
        "repeat": args.repeat,
        "duration_s": args.duration,
        "backlog": args.backlog,
        "templates": {},
        "results": {},
    }
    revision = history.schema_revision()
    with tempfile.TemporaryDirectory(prefix="store-growth-", dir=REPO / "reports") as tmp:
        workdir = Path(tmp)
        for ids in id_kinds:
            templates = {}
            for size in sizes:
                spec = history.HistorySpec(size, args.backlog, ids)
                templates[size], report["templates"][spec.name(revision)] = history.template(spec)
            report["results"][ids] = {
                "updates": bench_updates(
                    templates, ids, workdir, repeat=args.repeat, duration=args.duration
                ),
                "drain": bench_drains(
                    templates, ids, workdir, repeat=args.repeat, backlog=args.backlog
                ),
            }
        if not args.skip_purge:
            spec = history.HistorySpec(args.purge_rows, 0, args.purge_ids, args.purge_rows)
            template, report["templates"][spec.name(revision)] = history.template(spec)
            report.update(
                purge_rows=args.purge_rows,
                purge_ids=args.purge_ids,
                purge_duration_s=args.purge_duration,
            )
            report["purge"] = bench_purge(
                template, workdir, repeat=args.repeat, duration=args.purge_duration,
                rows=args.purge_rows,
            )  # fmt: skip
    path = write_report(report, args.out, "growth")
    if not args.no_plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    print()
    print(render(report))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
