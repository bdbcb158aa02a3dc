"""The README's first command: the whole stack on embedded defaults, then Ctrl-C stops it all."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.processes import free_port, wait_until
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.integration


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll until `predicate` holds; a connection refused while the stack starts is a no."""

    def probe() -> object:
        try:
            return predicate()
        except httpx.HTTPError:
            return False

    wait_until(what, probe, timeout=timeout, every=0.3)


def test_one_command_runs_the_stack_and_syncs_on_the_dev_broker(tmp_path: Path) -> None:
    central_port, api_port = free_port(), free_port()
    # Only what the quickstart user has: no STORE_*/CENTRAL_SIM_* from other tests' setup.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STORE_", "CENTRAL_SIM_"))}
    env = {
        **clean,
        "STORE_DATA_DIR": str(tmp_path),
        "STORE_DATABASE_URL": f"sqlite:///{tmp_path}/store.db",
        "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{tmp_path}/central.db",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "stack.log").open("w")
    stack = subprocess.Popen(
        [sys.executable, "bin/run_local.py", "--central-port", str(central_port),
         "--api-port", str(api_port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_for(lambda: "ready:" in (tmp_path / "stack.log").read_text(), 90, "the stack")
        update = httpx.post(
            f"{api}/v1/local/inventory/QS-1/update", json={"delta": 4, "operation_id": "qs-1"}
        )
        assert update.status_code == 200
        trigger = httpx.post(f"{api}/v1/local/sync/trigger")
        assert trigger.status_code == 202
        wait_for(
            lambda: httpx.get(f"{api}/v1/local/sync/status/qs-1").json()["status"] == "synced",
            60,
            "the change to reach central",
        )
        item = httpx.get(f"{api}/v1/local/inventory/QS-1").json()
        assert (item["central_quantity"], item["pending_count"]) == (4, 0)
        wait_for(lambda: "\nbeat    |" in (tmp_path / "stack.log").read_text(), 60, "beat to start")
        # Both consoles answer where the stack said they are.
        text = (tmp_path / "stack.log").read_text()
        assert f"store console {api}/console" in text
        panel = f"http://127.0.0.1:{central_port}/_sim/console"
        assert f"central_sim panel {panel}" in text
        console = httpx.get(f"{api}/console", headers={"accept": "text/html"})
        assert console.status_code == 200, "no API keys: the console is open"
        assert "Sync overview" in console.text
        login = httpx.get(panel, headers={"accept": "text/html"}, follow_redirects=True)
        assert login.status_code == 200
        assert "Sign in" in login.text, "the panel asks for the admin token"
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=60)
        log.close()
    output = (tmp_path / "stack.log").read_text()
    assert code == 0, output[-3000:]
    for prefix in ("central ", "api     ", "worker  ", "beat    "):
        assert f"\n{prefix}|" in output, f"no output from {prefix.strip()}"
    assert output.rstrip().endswith("stopped")
    for port in (central_port, api_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
