"""The thundering herd after a regional outage, from central's journal and the stores' retry
schedule: how fast central ingested once every store came back, how long until every outbox
was empty, and how far full jitter spread the moments the stores were allowed to retry.

Without jitter, every change that failed the same number of times is due at the same instant
(`min(cap, base * 2**(attempts-1))` after its last failure), so a region cut at once comes back
at once; with full jitter the due times spread uniformly below that ceiling. `due` (read from
every store's outbox just before the heal) shows the spread; central's arrivals per bin show
what it did to central.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

BIN_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Herd:
    applied_after_heal: int
    ingest_seconds: float  # from the heal to central's last store entry
    ingest_rate: float  # store changes applied per second over that span
    peak_rate: float  # the busiest BIN_SECONDS bin, per second
    time_to_converge: float | None  # heal to every outbox empty
    first_after_heal: dict[str, float]  # per store: seconds from heal to its first applied change
    due_count: int
    due_at_once: int  # pending changes already due at the heal (retried the moment it heals)
    due_percentiles: dict[str, float]  # p10/p50/p90 of (next attempt - heal), seconds
    due_distinct_100ms: int  # distinct 100 ms slots the due times fall in
    arrivals: list[tuple[float, int]]  # (bin start since heal, store changes applied)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) < 2:
        return {f"p{q}": round(values[0], 3) if values else 0.0 for q in (10, 50, 90)}
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return {"p10": round(cuts[0], 3), "p50": round(cuts[4], 3), "p90": round(cuts[8], 3)}


def herd_report(
    journal: Iterable[Mapping[str, Any]],
    stores: set[str],
    healed_at: float,
    converged_at: float | None,
    due: Sequence[float],
) -> Herd:
    times: dict[str, list[float]] = {}
    for entry in journal:
        if entry["service"] in stores and entry.get("kind") != "seed":
            at = _epoch(str(entry["at"]))
            if at >= healed_at:
                times.setdefault(str(entry["service"]), []).append(at - healed_at)
    offsets = sorted(t for per_store in times.values() for t in per_store)
    span = offsets[-1] if offsets else 0.0
    bins: dict[int, int] = {}
    for t in offsets:
        bins[int(t // BIN_SECONDS)] = bins.get(int(t // BIN_SECONDS), 0) + 1
    due_offsets = [d - healed_at for d in due]
    return Herd(
        applied_after_heal=len(offsets),
        ingest_seconds=round(span, 3),
        ingest_rate=round(len(offsets) / span, 1) if span > 0 else 0.0,
        peak_rate=round(max(bins.values(), default=0) / BIN_SECONDS, 1),
        time_to_converge=None if converged_at is None else round(converged_at - healed_at, 2),
        first_after_heal={s: round(min(t), 3) for s, t in sorted(times.items())},
        due_count=len(due_offsets),
        due_at_once=sum(d <= 0 for d in due_offsets),
        due_percentiles=_percentiles(due_offsets),
        due_distinct_100ms=len({round(d, 1) for d in due}),
        arrivals=[(b * BIN_SECONDS, n) for b, n in sorted(bins.items())],
    )
