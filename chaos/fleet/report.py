"""Reports of a fleet run: per scenario a JSON file (everything), a Markdown page and a PNG
(per-store sync lag, backlog and queue depth over time, the fault window shaded; central's
arrivals after the heal for the regional outage); for the run a summary (Markdown + JSON) with
the scenario table and each store's measured costs."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from chaos.fleet.expect import GRACE_SECONDS, synced_between
from chaos.fleet.observe import StoreSample
from chaos.fleet.runner import FleetResult, StoreOutcome

FAULT_COLOR = "#f4a261"
SUMMARY_HEADER = (
    "| scenario | stores | ops | acknowledged | synced | parked | lost | duplicated | "
    "unexpected | central ≠ Σ stores | conflicts at central | victim lag max | others' lag "
    "p50 in window / outside | converged after heal | result |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _lags(samples: Sequence[StoreSample], lo: float, hi: float, inside: bool) -> list[float]:
    return [
        s.lag if s.lag is not None else 0.0
        for s in samples
        if s.counts is not None and (lo <= s.at <= hi) == inside
    ]


def _p50(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def store_row(store: StoreOutcome, result: FleetResult) -> dict[str, Any]:
    c = store.check
    lo, hi = result.fault_opened_at + GRACE_SECONDS, result.healed_at
    return {
        "service": store.service,
        "ops": c.operations,
        "acknowledged": c.acknowledged,
        "refused": c.refused,
        "unknown": c.unknown,
        "synced": c.synced,
        "parked": c.parked,
        "lost": len(c.lost),
        "duplicated": len(c.duplicated),
        "errors": {k: len(v) for k, v in c.errors().items()},
        "ok": c.ok,
        "converged_after_heal": None
        if store.converged_at is None
        else round(store.converged_at - result.healed_at, 2),
        "synced_in_window": synced_between(store.samples, lo, hi),
        "lag_max": max((s.lag or 0.0 for s in store.samples), default=0.0),
        "lag_p50_in_window": _p50(_lags(store.samples, lo, hi, True)),
        "lag_p50_outside": _p50(_lags(store.samples, lo, hi, False)),
        "queue_messages_max": max((s.queue_messages or 0 for s in store.samples), default=0),
    }


def summary_row(result: FleetResult) -> dict[str, Any]:
    rows = [store_row(s, result) for s in result.stores]
    others = rows[1:] or rows
    totals_before = result.central_before.get("totals", {})
    totals_after = result.central_after.get("totals", {})
    conflicts = totals_after.get("conflict", 0) - totals_before.get("conflict", 0)
    converged = result.converged_at
    return {
        "scenario": result.scenario.name,
        "stores": len(rows),
        "ops": sum(r["ops"] for r in rows),
        "acknowledged": sum(r["acknowledged"] for r in rows),
        "synced": sum(r["synced"] for r in rows),
        "parked": sum(r["parked"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "duplicated": sum(r["duplicated"] for r in rows),
        "unexpected": sum(r["errors"].get("unexpected", 0) for r in rows),
        "central_mismatches": len(result.central_mismatches),
        "central_conflicts": conflicts,
        "victim_lag_max": round(rows[0]["lag_max"], 1),
        "others_lag_p50_in_window": _p50([r["lag_p50_in_window"] or 0.0 for r in others]),
        "others_lag_p50_outside": _p50([r["lag_p50_outside"] or 0.0 for r in others]),
        "converged_after_heal": None
        if converged is None
        else round(converged - result.healed_at, 1),
        "passed": result.passed,
    }


def summary_line(row: dict[str, Any]) -> str:
    ttc = row["converged_after_heal"]
    return (
        f"| {row['scenario']} | {row['stores']} | {row['ops']} | {row['acknowledged']} | "
        f"{row['synced']} | {row['parked']} | {row['lost']} | {row['duplicated']} | "
        f"{row['unexpected']} | {row['central_mismatches']} | {row['central_conflicts']} | "
        f"{row['victim_lag_max']} s | {row['others_lag_p50_in_window']} / "
        f"{row['others_lag_p50_outside']} s | {'—' if ttc is None else f'{ttc} s'} | "
        f"{'pass' if row['passed'] else '**FAIL**'} |"
    )


def to_json(result: FleetResult) -> dict[str, Any]:
    t0 = result.started_at

    def rel(at: float | None) -> float | None:
        return None if at is None else round(at - t0, 2)

    return {
        "summary": summary_row(result),
        "scenario": {
            **{k: v for k, v in asdict(result.scenario).items() if k != "competing"},
            "competing": None
            if result.scenario.competing is None
            else asdict(result.scenario.competing),
        },
        "config": asdict(result.config),
        "timing": {
            "started_at": t0,
            "fault_opened": rel(result.fault_opened_at),
            "healed": rel(result.healed_at),
            "traffic_done": rel(result.traffic_done_at),
            "converged": rel(result.converged_at),
            "finished": rel(result.finished_at),
        },
        "stores": [
            {
                **store_row(s, result),
                "check": s.check.as_dict(),
                "costs_before": s.costs_before,
                "costs_after": s.costs_after,
                "samples": [
                    {
                        "t": round(p.at - t0, 2),
                        "counts": p.counts,
                        "lag": p.lag,
                        "auth_failed": p.auth_failed,
                        "backlog_health": p.backlog_health,
                        "queue_messages": p.queue_messages,
                        "queue_consumers": p.queue_consumers,
                    }
                    for p in s.samples
                ],
            }
            for s in result.stores
        ],
        "central_mismatches": result.central_mismatches,
        "central_stats_before": result.central_before,
        "central_stats_after": result.central_after,
        "central_requests": result.central_requests,
        "competing_writer": result.competing,
        "herd": None if result.herd is None else result.herd.as_dict(),
        "events": [{"t": round(at - t0, 2), "label": label} for at, label in result.events],
        "expectations_failed": result.expectations_failed,
    }


def to_markdown(result: FleetResult, png_name: str) -> str:
    row = summary_row(result)
    lines = [
        f"# Fleet scenario `{result.scenario.name}`: {'PASS' if result.passed else 'FAIL'}",
        "",
        result.scenario.description,
        "",
        SUMMARY_HEADER,
        summary_line(row),
        "",
        f"![per-store lag]({png_name})",
        "",
        "## Stores",
        "",
        "| store | ops | acknowledged | synced | parked | lost | duplicated | synced in window | "
        "lag p50 in window / outside | lag max | queue max | converged after heal | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for store in result.stores:
        r = store_row(store, result)
        ttc = r["converged_after_heal"]
        lines.append(
            f"| {r['service']} | {r['ops']} | {r['acknowledged']} | {r['synced']} | "
            f"{r['parked']} | {r['lost']} | {r['duplicated']} | {r['synced_in_window']} | "
            f"{r['lag_p50_in_window']} / {r['lag_p50_outside']} s | {r['lag_max']:.1f} s | "
            f"{r['queue_messages_max']} | {'—' if ttc is None else f'{ttc} s'} | "
            f"{'ok' if r['ok'] else 'FAIL: ' + json.dumps(r['errors'])} |"
        )
    if result.herd is not None:
        h = result.herd
        lines += [
            "",
            "## Thundering herd (after the heal)",
            "",
            f"- time to converge (every outbox empty): {h.time_to_converge} s",
            f"- central ingest: {h.applied_after_heal} store changes in {h.ingest_seconds} s "
            f"= {h.ingest_rate}/s (peak {h.peak_rate}/s over 0.5 s)",
            f"- retry schedule at the heal (full jitter): {h.due_count} pending changes, "
            f"{h.due_at_once} due at once, the rest at p10/p50/p90 = {h.due_percentiles} s "
            f"from the heal, in {h.due_distinct_100ms} distinct 100 ms slots",
            f"- first change applied per store after the heal (s): {h.first_after_heal}",
        ]
    calls = sum(result.central_requests.values())
    applied = result.central_after.get("totals", {}).get("applied", 0) - result.central_before.get(
        "totals", {}
    ).get("applied", 0)
    lines += [
        "",
        "## Central",
        "",
        f"- requests by handler: {json.dumps(result.central_requests, sort_keys=True)}",
        f"- changes applied: {applied}; calls per applied change: "
        f"{calls / applied if applied else math.nan:.3f}",
        "",
        "## Events (seconds since traffic start)",
        "",
        *[f"- {at - result.started_at:6.1f}  {label}" for at, label in result.events],
        "",
        "## Verdict",
        "",
    ]
    if result.passed:
        lines.append("Every check passed: per store and for central as a whole, and the fault bit.")
    if not result.converged:
        lines.append(f"- not every store converged within {result.config.converge_timeout:.0f} s")
    for failure in result.expectations_failed:
        lines.append(f"- expectation failed: {failure}")
    for store in result.stores:
        for kind, items in store.check.errors().items():
            lines.append(f"- {store.service} **{kind}** ({len(items)}): {items[:20]}")
    if result.central_mismatches:
        lines.append(f"- **central ≠ seed + Σ stores + competing**: {result.central_mismatches}")
    return "\n".join(lines) + "\n"


def write_png(result: FleetResult, path: Path) -> None:
    t0 = result.started_at
    panels = 4 if result.herd is not None else 3
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.6 * panels + 1), sharex=True)
    lag_ax, backlog_ax, queue_ax = axes[0], axes[1], axes[2]
    label_each = len(result.stores) <= 10
    for n, store in enumerate(result.stores):
        times = [s.at - t0 for s in store.samples]
        lag = [math.nan if s.counts is None else (s.lag or 0.0) for s in store.samples]
        backlog = [
            math.nan
            if s.counts is None
            else float(s.counts.get("pending", 0) + s.counts.get("in_flight", 0))
            for s in store.samples
        ]
        queue = [
            math.nan if s.queue_messages is None else float(s.queue_messages) for s in store.samples
        ]
        style = {"linewidth": 2.0 if n == 0 else 0.9, "alpha": 1.0 if n == 0 else 0.7}
        label = store.service if (label_each or n == 0) else None
        lag_ax.plot(times, lag, label=label, **style)
        backlog_ax.plot(times, backlog, **style)
        queue_ax.plot(times, queue, **style)
    lag_ax.set_ylabel("sync lag (s)\noldest pending")
    backlog_ax.set_ylabel("backlog\n(pending + in flight)")
    queue_ax.set_ylabel("sync queue\nmessages (RabbitMQ)")
    if result.herd is not None:
        herd_ax = axes[3]
        offset = result.healed_at - t0
        bins = result.herd.arrivals
        herd_ax.bar(
            [offset + b for b, _ in bins],
            [n for _, n in bins],
            width=0.45,
            align="edge",
            color="#2a9d8f",
        )
        herd_ax.set_ylabel("central: store changes\napplied per 0.5 s")
    for axis in axes:
        axis.axvspan(
            result.fault_opened_at - t0,
            result.healed_at - t0,
            color=FAULT_COLOR,
            alpha=0.3,
        )
        axis.grid(alpha=0.3)
    lag_ax.legend(loc="upper left", fontsize=7, ncol=2)
    axes[-1].set_xlabel("seconds since traffic start (fault window shaded)")
    row = summary_row(result)
    fig.suptitle(
        f"{result.scenario.name}: {'PASS' if result.passed else 'FAIL'} — {row['stores']} "
        f"stores, {row['acknowledged']} acknowledged, lost {row['lost']}, duplicated "
        f"{row['duplicated']}, central mismatches {row['central_mismatches']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_reports(result: FleetResult, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    name = result.scenario.name
    paths = {
        "json": directory / f"{name}.json",
        "markdown": directory / f"{name}.md",
        "png": directory / f"{name}.png",
    }
    paths["json"].write_text(json.dumps(to_json(result), indent=2) + "\n")
    write_png(result, paths["png"])
    paths["markdown"].write_text(to_markdown(result, paths["png"].name))
    return paths


def write_summary(
    directory: Path, results: Sequence[FleetResult], costs: dict[str, Any], started: float
) -> Path:
    """summary.md/.json: the scenario table and the per-store costs (`chaos.fleet.costs`)."""
    rows = [summary_row(r) for r in results]
    lines = [
        f"# Fleet run: {costs['stores']} stores",
        "",
        SUMMARY_HEADER,
        *map(summary_line, rows),
        "",
        "## Per-store costs (measured in this run)",
        "",
        "```json",
        json.dumps(costs, indent=2, sort_keys=True),
        "```",
    ]
    path = directory / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    (directory / "summary.json").write_text(
        json.dumps({"started_at": started, "scenarios": rows, "costs": costs}, indent=2) + "\n"
    )
    return path
