"""Reports of chaos runs: per scenario a JSON file (everything), a Markdown page and a PNG
timeline; for a set of runs a Markdown summary table (the one docs/chaos.md
shows)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos import scenarios
from chaos.power import PowerCut
from chaos.power import summary as power_summary
from chaos.runner import RunResult
from chaos.scenarios import Scenario
from chaos.timeline import write_timeline

SUMMARY_HEADER = (
    "| scenario | ops | requests | acknowledged | refused | retried | unknown (applied) | synced | "
    "parked | lost | duplicated | unexpected | central replays / conflicts | converged in | "
    "result |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def summary_row(result: RunResult) -> dict[str, Any]:
    c = result.check
    ttc = result.time_to_converge
    totals = result.central_stats.get("totals", {})
    return {
        "scenario": result.scenario.name,
        "ops": c.operations,
        "requests": c.requests,
        "acknowledged": c.acknowledged,
        "refused": c.refused,
        "retried": c.retried,
        "unknown": c.unknown,
        "unknown_applied": c.unknown_applied,
        "synced": c.synced,
        "parked": c.parked,
        "lost": len(c.lost),
        "duplicated": len(c.duplicated),
        "unexpected": len(c.unexpected),
        "central_duplicates": int(totals.get("duplicate", 0)),
        "central_conflicts": int(totals.get("conflict", 0)),
        "time_to_converge_seconds": None if ttc is None else round(ttc, 1),
        "passed": result.passed,
    }


def summary_line(row: dict[str, Any]) -> str:
    ttc = row["time_to_converge_seconds"]
    return (
        f"| {row['scenario']} | {row['ops']} | {row['requests']} | {row['acknowledged']} | "
        f"{row['refused']} | {row['retried']} | {row['unknown']} ({row['unknown_applied']}) | "
        f"{row['synced']} | "
        f"{row['parked']} | {row['lost']} | {row['duplicated']} | {row['unexpected']} | "
        f"{row['central_duplicates']} / {row['central_conflicts']} | "
        f"{'—' if ttc is None else f'{ttc:.1f} s'} | {'pass' if row['passed'] else '**FAIL**'} |"
    )


def to_json(result: RunResult) -> dict[str, Any]:
    t0 = result.started_at
    return {
        "summary": summary_row(result),
        "scenario": scenario_dict(result.scenario),
        "config": {k: str(v) for k, v in asdict(result.config).items()},
        "timing": {
            "started_at": t0,
            "fault_opened": _rel(result.fault_opened_at, t0),
            "healed": _rel(result.healed_at, t0),
            "traffic_done": _rel(result.traffic_done_at, t0),
            "converged": _rel(result.converged_at, t0),
            "finished": _rel(result.finished_at, t0),
        },
        "check": result.check.as_dict(),
        "expectations_failed": result.expectations_failed,
        "central_stats": result.central_stats,
        "competing_writer": result.competing,
        "events": [{"t": round(e.at - t0, 2), "label": e.label} for e in result.events],
        "triggers": [
            {"t": round(a.at - t0, 2), "status": a.status, "detail": a.detail}
            for a in result.triggers
        ],
        "samples": [{"t": round(s.at - t0, 2), "counts": s.counts} for s in result.samples],
        "logs": result.logs,
        "power_cuts": {
            "summary": power_summary(result.power_cuts),
            "cuts": [cut.as_dict() for cut in result.power_cuts],
        }
        if result.scenario.power_cuts is not None
        else None,
    }


def scenario_dict(s: Scenario) -> dict[str, Any]:
    """The scenario as plain JSON (its mappings are read-only proxies, which asdict refuses)."""
    return {
        "name": s.name,
        "description": s.description,
        "toxics": [
            {
                "proxy": t.proxy,
                "type": t.type,
                "stream": t.stream,
                "toxicity": t.toxicity,
                "attributes": dict(t.attributes),
            }
            for t in s.toxics
        ],
        "cuts": list(s.cuts),
        "sim_faults": dict(s.sim_faults),
        "process_faults": [{"action": f.action, "at": f.at} for f in s.process_faults],
        "competing": None if s.competing is None else asdict(s.competing),
        "store_env": dict(s.store_env),
        "traffic_seconds": s.traffic_seconds,
        "fault_at": s.fault_at,
        "fault_seconds": s.fault_seconds,
        "ci": s.ci,
        "not_in_ci_because": s.not_in_ci_because,
        "power_cuts": None if s.power_cuts is None else asdict(s.power_cuts),
        "negative_control": s.negative_control,
    }


def _rel(at: float | None, t0: float) -> float | None:
    return None if at is None else round(at - t0, 2)


def to_markdown(result: RunResult, png_name: str) -> str:
    c, s = result.check, result.scenario
    row = summary_row(result)
    power = (
        []
        if s.power_cuts is None
        else ["## Power cuts", "", *power_cut_table(result.power_cuts), ""]
    )
    lines = [
        f"# Chaos scenario `{s.name}`: {'PASS' if result.passed else 'FAIL'}",
        "",
        s.description,
        "",
        SUMMARY_HEADER,
        summary_line(row),
        "",
        f"![timeline]({png_name})",
        "",
        "## Events (seconds since traffic start)",
        "",
        *[f"- {e.at - result.started_at:6.1f}  {e.label}" for e in result.events],
        "",
        "## Central's counters",
        "",
        "```json",
        json.dumps(result.central_stats.get("totals", {}), indent=2, sort_keys=True),
        "```",
        "",
        *power,
        "## Checker",
        "",
    ]
    errors = c.errors()
    if s.negative_control:
        lines.append(
            f"Negative control: the store is deliberately not durable; the run passes only "
            f"when the checker reports lost acknowledged changes ({len(c.lost)} here)."
        )
    if not errors and not result.expectations_failed and result.converged:
        lines.append("Every check passed.")
    if not result.converged:
        lines.append(f"- did not converge within {result.config.converge_timeout:.0f} s")
    for failure in result.expectations_failed:
        lines.append(f"- expectation failed: {failure}")
    for kind, items in errors.items():
        lines.append(f"- **{kind}** ({len(items)}): " + ", ".join(map(str, items[:50])))
    if result.logs:
        lines += ["", f"Process logs kept in `{result.logs}`."]
    return "\n".join(lines) + "\n"


POWER_CUT_HEADER = (
    "| cut | moment | landed | unsynced bytes dropped | dirty files | fsyncs since mount | "
    "acknowledged (since restart) | at risk | applied at central, unrecorded | checkpoint "
    "frames copying | integrity | lost | down |\n"
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
)


def power_cut_table(cuts: list[PowerCut]) -> list[str]:
    """One row per cut: what it dropped, what was at risk, what the database held after."""
    rows = [POWER_CUT_HEADER]
    for cut in cuts:
        frames = (
            "—"
            if cut.checkpoint is None
            else str(cut.checkpoint["backfill_attempted"] - cut.checkpoint["backfilled"])
        )
        rows.append(
            f"| {cut.number} | {cut.moment} | {'yes' if cut.caught else '**no**'} | "
            f"{cut.unsynced_bytes} | {cut.dirty_files} | {cut.syncs} | {cut.acknowledged} "
            f"({cut.acknowledged_since_restart}) | {cut.at_risk} | {cut.unrecorded_at_central} | "
            f"{frames} | {', '.join(cut.integrity[:2])} | {len(cut.lost)} | "
            f"{cut.down_seconds:.1f} s |"
        )
    return rows


def write_reports(result: RunResult, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    name = result.scenario.name
    paths = {
        "json": directory / f"{name}.json",
        "markdown": directory / f"{name}.md",
        "png": directory / f"{name}.png",
    }
    paths["json"].write_text(json.dumps(to_json(result), indent=2) + "\n")
    write_timeline(result, paths["png"])
    paths["markdown"].write_text(to_markdown(result, paths["png"].name))
    return paths


def write_summary(directory: Path) -> Path:
    """summary.md/.json over every scenario report in `directory`, in scenario order, so
    scenarios run by separate commands into one folder end up in one table."""
    order = {s.name: n for n, s in enumerate(scenarios.SCENARIOS)}
    rows = [
        json.loads(path.read_text())["summary"]
        for path in directory.glob("*.json")
        if path.name != "summary.json"
    ]
    rows.sort(key=lambda row: (order.get(row["scenario"], len(order)), row["scenario"]))
    path = directory / "summary.md"
    lines = ["# Chaos run summary", "", SUMMARY_HEADER, *map(summary_line, rows)]
    path.write_text("\n".join(lines) + "\n")
    (directory / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return path
