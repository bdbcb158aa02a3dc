"""CI's smoke of benchmarks (f) and (g): smoke-sized, one repetition each, proving that both
commands run end to end against real processes (store API, worker, RabbitMQ, central_sim,
wrk) and write their JSON. The figures are not judged here: they are benchmark output.

    uv run pytest -m load tests/load/test_growth_smoke.py
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT, require
from tests.support.services import rabbitmq_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.load


def _run(argv: list[str], timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    return output


def _report(out: Path, prefix: str) -> dict:
    (path,) = out.glob(f"{prefix}-*.json")
    return json.loads(path.read_text())


def test_the_recovery_benchmark_runs_and_writes_json(tmp_path: Path, rabbitmq_url: str) -> None:  # noqa: F811
    _run(
        ["loadtests.recovery_bench", "--pending", "20000", "--final", "100000", "--repeat", "1",
         "--timeout", "60", "--broker-url", rabbitmq_url, "--out", str(tmp_path)],
        timeout=180,
    )  # fmt: skip
    report = _report(tmp_path, "recovery")
    (run,) = report["runs"]
    assert 0 < run["first_update_s"] < 60
    assert 0 < run["first_batch_at_central_s"] < 60
    assert report["steps"]["steps_s"]
    assert "met_by_median" in report["targets"]


def test_the_growth_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk (Debian package `wrk`)", "apt-get install -y wrk")
    _run(
        ["loadtests.growth_bench", "--sizes", "0,100000", "--ids", "v7", "--backlog", "10000",
         "--repeat", "1", "--duration", "1", "--purge-rows", "10000", "--purge-duration", "2",
         "--no-plot", "--out", str(tmp_path)],
        timeout=240,
    )  # fmt: skip
    report = _report(tmp_path, "growth")
    sizes = report["results"]["v7"]
    assert set(sizes["updates"]) == set(sizes["drain"]) == {"0", "100000"}
    assert sizes["updates"]["100000"]["non_2xx_total"] == 0
    assert sizes["drain"]["100000"]["runs"][0]["outcomes"] == {"applied": 10000}
    assert set(report["purge"]) == {"batched", "one_transaction"}
    assert report["purge"]["one_transaction"]["runs"][0]["purged"] == 10000
    assert report["purge"]["batched"]["runs"][0]["purged"] > 0
