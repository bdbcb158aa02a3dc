"""The Schemathesis CLI against live servers (uvicorn subprocesses), as a developer runs it.

`uv run schemathesis run <url>/openapi.json` with the repo's schemathesis.toml (custom checks as
hooks, all checks, all phases); a small max-examples keeps it inside the CI budget (not
--max-time: that makes fuzzing repeat until the time is spent). docs/testing.md has the bigger local
run and its case counts.
"""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.central import CentralSim, start_central
from harness.store import StoreApi, start_store_api
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.contract
CLI_MAX_EXAMPLES = os.environ.get("CONTRACT_CLI_MAX_EXAMPLES", "10")


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSim]:
    sim = start_central(tmp_path_factory.mktemp("central"))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, central: CentralSim) -> Iterator[StoreApi]:
    api = start_store_api(
        tmp_path_factory.mktemp("store"),
        STORE_CENTRAL_URL=central.base_url,
        STORE_CENTRAL_SERVICE_SECRET=central.services["inventory-service"],
    )
    yield api
    api.process.stop()


def run_cli(base_url: str, central: CentralSim, report: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STORE_CENTRAL_SERVICE_SECRET": central.services["inventory-service"],
        "CENTRAL_SIM_ADMIN_TOKEN": central.admin_token,
        "PYTHONPATH": str(REPO_ROOT),  # the hooks module: tests.contract.checks
    }
    argv = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base_url}/openapi.json",
        "--max-examples",
        CLI_MAX_EXAMPLES,
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def _generated(output: str) -> int:
    match = re.search(r"(\d+) generated", output)
    return int(match.group(1)) if match else 0


@pytest.mark.timeout(300)
def test_cli_finds_no_failure_on_the_live_store(
    store: StoreApi, central: CentralSim, tmp_path: Path
) -> None:
    result = run_cli(store.base_url, central, tmp_path / "store.xml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert _generated(result.stdout) > 0


@pytest.mark.timeout(300)
def test_cli_finds_no_failure_on_the_live_central_sim(central: CentralSim, tmp_path: Path) -> None:
    result = run_cli(central.base_url, central, tmp_path / "central.xml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert _generated(result.stdout) > 0
