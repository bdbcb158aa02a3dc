"""CI's benchmark smoke: `python -m loadtests.bench` end to end, smoke-sized (a tiny backlog,
one repetition, 2-s runs), proving the command runs and writes its JSON with (a), (b), (c) and
(e). No figure is judged here: a loaded CI machine says nothing about speed (docs/performance.md
has the measured table); only that every part measured something and lost nothing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.sync_soon_bench import broker_available
from tests.support.processes import REPO_ROOT, require
from tests.support.services import broker_url

pytestmark = pytest.mark.load


def test_the_bench_command_measures_a_b_c_and_e_and_writes_json(tmp_path: Path) -> None:
    require(shutil.which("wrk") is not None, "wrk", "apt-get install -y wrk")
    require(broker_available(broker_url()), "RabbitMQ", "bash scripts/services/rabbitmq.sh ensure")
    argv = [
        sys.executable, "-m", "loadtests.bench", "--only", "abce", "--repeat", "1",
        "--duration", "2", "--backlog", "2000", "--one-by-one-sample", "100",
        "--e-backlog", "3000", "--e-duration", "2", "--paced-rate", "100",
        "--e-scenarios", "drain_paced,drain_saturating", "--broker-url", broker_url(),
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=150, check=False
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    (path,) = tmp_path.glob("bench-*.json")
    report = json.loads(path.read_text())
    current = report["http"]["servers"]["current"]
    assert current["ceiling"]["rps"]["median"] > 0  # (a)
    assert current["update"]["rps"]["median"] > 0  # (b)
    assert current["durability_check"]["ok"] == 1, current["durability_check"]
    assert report["drain"]["outcomes"] == {"applied": 2000}, report["drain"]  # (c)
    e = report["drain_while_selling"]  # (e)
    for name in ("drain_paced", "drain_saturating"):
        (run,) = e["runs"][name]
        assert run["drained"], run
        assert run["updates"]["updates"] > 0, run
        assert run["updates"]["errors"] == 0, run
    assert "300/s: update p99 <= 25 ms" in e["targets"]
    assert "| drain paced |" in done.stdout
