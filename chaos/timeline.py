"""The PNG timeline of one run: backlog and sync outcomes over time, the fault window shaded.

Top panel: changes pending or in flight (the backlog) and changes parked in conflict. Bottom
panel: changes synced (cumulative) and sync triggers refused (503, red marks). Vertical lines
are process events (kills, restarts, key rotations). Matplotlib's Agg backend: no display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from chaos.runner import RunResult

FAULT_COLOR = "#f4a261"


def _count(counts: dict[str, int] | None, *states: str) -> float:
    if counts is None:
        return math.nan
    return float(sum(counts.get(state, 0) for state in states))


def write_timeline(result: RunResult, path: Path) -> None:
    t0 = result.started_at
    # NaN where the API did not answer, so the curves break instead of bridging the gap.
    times = [s.at - t0 for s in result.samples]
    backlog = [_count(s.counts, "pending", "in_flight") for s in result.samples]
    parked = [_count(s.counts, "conflict") for s in result.samples]
    synced = [_count(s.counts, "synced") for s in result.samples]
    gaps = [s.at - t0 for s in result.samples if s.counts is None]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    top.plot(times, backlog, color="#1d3557", label="backlog (pending + in flight)")
    top.plot(times, parked, color="#e63946", linestyle="--", label="parked (conflict)")
    top.set_ylabel("changes")
    bottom.plot(times, synced, color="#2a9d8f", label="synced (cumulative)")
    bottom.set_ylabel("changes")
    bottom.set_xlabel("seconds since traffic start")
    refused = [a.at - t0 for a in result.triggers if a.status != 202]
    if refused:
        bottom.scatter(
            refused,
            [0] * len(refused),
            marker="x",
            color="#e63946",
            zorder=3,
            label="sync trigger refused (503 / no answer)",
        )
    if gaps:
        top.scatter(gaps, [0] * len(gaps), marker="|", color="grey", label="API not answering")

    for axis in (top, bottom):
        if result.fault_opened_at is not None and result.healed_at is not None:
            axis.axvspan(
                result.fault_opened_at - t0,
                result.healed_at - t0,
                color=FAULT_COLOR,
                alpha=0.3,
                label="fault window",
            )
        if result.converged_at is not None:
            axis.axvline(
                result.converged_at - t0, color="#2a9d8f", linestyle=":", label="converged"
            )
        for event in result.events:
            if event.label not in ("fault window opens", "healed"):
                axis.axvline(event.at - t0, color="#6d597a", linewidth=0.8, alpha=0.7)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize=8)
    for event in result.events:
        if event.label not in ("fault window opens", "healed"):
            top.annotate(
                event.label,
                (event.at - t0, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="right",
                color="#6d597a",
            )

    verdict = "PASS" if result.passed else "FAIL"
    check = result.check
    fig.suptitle(
        f"{result.scenario.name}: {verdict} — {check.operations} ops, "
        f"{check.acknowledged} acknowledged, {check.unknown} unknown, lost {len(check.lost)}, "
        f"duplicated {len(check.duplicated)}",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
