"""wrk, the saturating load generator of (a), (b), (e) and (g): its command line with
`update.lua`, the summary line the script prints, and the CPU time of a process it measures.

Debian's `wrk` (`apt-get install -y wrk`); the script posts updates with unique operation_ids
over N SKUs and prints one `WRKJSON {...}` line at the end (latencies in microseconds).
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "update.lua"
UPDATE_PREFIX = "/v1/local/inventory"


def argv(
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    skus: int,
    tag: str,
    prefix: str = UPDATE_PREFIX,
    operation_ids: str = "sequential",
) -> list[str]:
    """The wrk command line; exits with how to install wrk when it is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        prefix,
        str(skus),
        tag,
        operation_ids,
    ]


@dataclass(frozen=True)
class Summary:
    """What one wrk run printed."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int  # connect, read and write errors and timeouts
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def summary(output: str) -> Summary:
    """The `WRKJSON` line of wrk's output; RuntimeError (with the output's tail) without one."""
    line = next((x for x in output.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return Summary(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non_2xx=data["non_2xx"],
        socket_errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used (from /proc/<pid>/stat);
    FileNotFoundError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
