"""CI's load smoke: every Locust profile for 30 s against a real store API, as subprocesses.

Locust monkey-patches with gevent, so it never runs inside this process.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import start_store_api
from loadtests.thresholds import aggregated_from_csv
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.load


def test_the_smoke_profile_runs_headless_with_no_unexpected_failures(tmp_path: Path) -> None:
    store = start_store_api(tmp_path / "store")
    reports = tmp_path / "reports"
    try:
        argv = [
            sys.executable, "-m", "loadtests", "run", "--profile", "smoke",
            "--users", "12", "--duration", "30s", "--skus", "100",
            "--host", store.base_url, "--out", str(reports),
            # Latency limits are generous (CI machines are small and shared); failures are not.
            "--p95-ms", "3000", "--p99-ms", "8000", "--max-failure-ratio", "0",
        ]  # fmt: skip
        done = subprocess.run(
            argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False
        )
    finally:
        store.process.stop()
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    (run_dir,) = reports.iterdir()
    stats = aggregated_from_csv(run_dir / "locust_stats.csv")
    assert stats.requests > 100, output
    assert stats.failures == 0, (run_dir / "locust_failures.csv").read_text()
    verdict = json.loads((run_dir / "thresholds.json").read_text())
    assert verdict["passed"], verdict
    names = (run_dir / "locust_stats.csv").read_text()
    for name in ("update [till sell]", "update [retry replay]", "update [hot versioned]"):
        assert name in names, f"{name} never ran"
    assert (run_dir / "report.html").stat().st_size > 0
