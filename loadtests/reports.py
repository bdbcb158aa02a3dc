"""What every benchmark report starts with (when, where, the machine note, the command) and
where it is written: reports/bench/<kind>-<time>.json."""

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
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
