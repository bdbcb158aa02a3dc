"""What every benchmark report starts with (when, where, the machine note, the command), how
it sums up repetitions (median and range), and where it is written:
reports/bench/<kind>-<time>.json."""

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def report_header(prog: str, argv: Sequence[str] | None, note: str) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "note": note,
        "command": " ".join([prog, *(sys.argv[1:] if argv is None else argv)]),
    }


def write_report(report: dict[str, Any], out: Path, kind: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-{report['started_at'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2))
    return path


@dataclass
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        """Median, min and max; NaN for each when nothing was measured."""
        if not values:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(values), min(values), max(values))

    def fmt(self, digits: int = 0, suffix: str = "") -> str:
        return f"{self.median:,.{digits}f}{suffix} [{self.low:,.{digits}f}-{self.high:,.{digits}f}]"

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high}


def spread(values: Sequence[float]) -> dict[str, float]:
    """`Spread.of(values)` as the reports' JSON holds it."""
    return Spread.of(values).as_dict()


def fmt_spread(spread: dict[str, float], digits: int = 0, suffix: str = "") -> str:
    """A `spread()` from a report as `median [min-max]`."""
    return Spread(spread["median"], spread["min"], spread["max"]).fmt(digits, suffix)
