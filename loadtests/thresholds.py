"""Pass/fail rules for a load run (p95, p99, failure ratio, minimum requests). No Locust here.

The locustfile feeds these from Locust's aggregated stats and sets the process exit code; tests
and the CLI also read them back from the CSV Locust writes.
"""

import csv
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Thresholds:
    p95_ms: float | None = 500.0
    p99_ms: float | None = 1000.0
    max_failure_ratio: float = 0.01
    min_requests: int = 1
    # Shape draining: the sync backlog must end at most this fraction of its peak.
    max_backlog_left: float = 0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Thresholds":
        """`LOAD_P95_MS`, `LOAD_P99_MS` (empty or `none` disables), `LOAD_MAX_FAILURE_RATIO`,
        `LOAD_MIN_REQUESTS`."""
        default = cls()
        return cls(
            p95_ms=_optional_float(env.get("LOAD_P95_MS"), default.p95_ms),
            p99_ms=_optional_float(env.get("LOAD_P99_MS"), default.p99_ms),
            max_failure_ratio=float(env.get("LOAD_MAX_FAILURE_RATIO", default.max_failure_ratio)),
            min_requests=int(env.get("LOAD_MIN_REQUESTS", default.min_requests)),
            max_backlog_left=float(env.get("LOAD_MAX_BACKLOG_LEFT", default.max_backlog_left)),
        )

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunStats:
    requests: int
    failures: int
    p95_ms: float
    p99_ms: float
    # Shape draining: changes waiting to sync, sampled during the run (empty otherwise).
    backlog_samples: tuple[int, ...] | list[int] = ()

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def _optional_float(raw: str | None, default: float | None) -> float | None:
    if raw is None:
        return default
    if raw.strip().lower() in ("", "none", "off"):
        return None
    return float(raw)


def violations(stats: RunStats, limits: Thresholds) -> list[str]:
    """Every broken rule, in words; empty means the run passes."""
    broken: list[str] = []
    if stats.requests < limits.min_requests:
        broken.append(f"only {stats.requests} requests (at least {limits.min_requests} expected)")
    if stats.failure_ratio > limits.max_failure_ratio:
        broken.append(
            f"failure ratio {stats.failure_ratio:.4f} > {limits.max_failure_ratio:.4f} "
            f"({stats.failures} of {stats.requests})"
        )
    if limits.p95_ms is not None and stats.p95_ms > limits.p95_ms:
        broken.append(f"p95 {stats.p95_ms:.0f} ms > {limits.p95_ms:.0f} ms")
    if limits.p99_ms is not None and stats.p99_ms > limits.p99_ms:
        broken.append(f"p99 {stats.p99_ms:.0f} ms > {limits.p99_ms:.0f} ms")
    if stats.backlog_samples:
        peak, last = max(stats.backlog_samples), stats.backlog_samples[-1]
        if peak and last > peak * limits.max_backlog_left:
            broken.append(
                f"sync backlog did not shrink: {last} left of a peak of {peak} "
                f"(at most {limits.max_backlog_left:.0%} allowed)"
            )
    return broken


def aggregated_from_csv(stats_csv: Path) -> RunStats:
    """The `Aggregated` row of Locust's `<prefix>_stats.csv`."""
    with stats_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":
                return RunStats(
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    p95_ms=_percentile(row.get("95%")),
                    p99_ms=_percentile(row.get("99%")),
                )
    raise ValueError(f"no Aggregated row in {stats_csv}")


def _percentile(raw: str | None) -> float:
    return 0.0 if raw is None or raw in ("", "N/A") else float(raw)


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `5m`, `1h30m`."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    total = 0.0
    number = ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}")
    if number:
        total += float(number)
    return total
