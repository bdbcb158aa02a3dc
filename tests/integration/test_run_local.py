"""The README's first command: the whole stack on embedded defaults, the seed's literal update
example on a demo SKU, then Ctrl-C stops it all; every line a child printed is JSON."""

import json
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

# The seed's example body, verbatim (its operation_id is the literal string "uuid").
SEED_EXAMPLE = {"delta": -1, "operation_id": "uuid", "version": 1}
CHILDREN = ("central", "api", "worker", "beat")


def child_lines(output: str) -> dict[str, list[str]]:
    """What each child printed (run_local prefixes each line with `name    | `)."""
    lines: dict[str, list[str]] = {name: [] for name in (*CHILDREN, "stack")}
    for line in output.splitlines():
        name, bar, text = line.partition("| ")
        assert bar, f"an unprefixed line in run_local's output: {line!r}"
        lines[name.strip()].append(text)
    return lines


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
        # The demo catalogue: the store learned SKU-1001 (25 at central) before the API opened.
        url = f"{api}/v1/local/inventory/SKU-1001/update"
        update = httpx.post(url, json=SEED_EXAMPLE)
        assert update.status_code == 200, update.text
        assert (update.json()["quantity"], update.json()["version"]) == (24, 2)
        again = httpx.post(url, json=SEED_EXAMPLE)  # the same request again: its first answer
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (200, "true")
        trigger = httpx.post(f"{api}/v1/local/sync/trigger")
        assert trigger.status_code == 202
        wait_for(
            lambda: httpx.get(f"{api}/v1/local/sync/status/uuid").json()["status"] == "synced",
            60,
            "the change to reach central",
        )
        item = httpx.get(f"{api}/v1/local/inventory/SKU-1001").json()
        assert (item["central_quantity"], item["pending_count"]) == (24, 0)
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
    lines = child_lines(output)
    for name in CHILDREN:
        assert lines[name], f"no output from {name}"
        for text in lines[name]:
            record = json.loads(text)  # every line a child prints, start-up to shutdown
            assert {"event", "level", "timestamp"} <= record.keys(), (name, text)
    events = {json.loads(text)["event"] for text in lines["central"]}
    assert any(event.startswith("Uvicorn running on") for event in events), events
    assert any("shutdown" in text for text in lines["worker"]), "the worker's shutdown banner"
    assert output.rstrip().endswith("stopped")
    for port in (central_port, api_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)


def test_central_sim_runs_on_the_development_values(tmp_path: Path) -> None:
    """The README's "central_sim beside it" command: `central-sim --env-file .env.example`
    with nothing else configured serves; a missing file is a usage error (exit 2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_SIM_")}
    script = str(Path(sys.executable).parent / "central-sim")
    missing = subprocess.run(
        [script, "--env-file", str(tmp_path / "nope")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2, missing.stderr
    assert "no such env file" in missing.stderr
    port = free_port()
    env["CENTRAL_SIM_DATABASE_URL"] = f"sqlite:///{tmp_path / 'central.db'}"
    argv = [script, "--port", str(port), "--env-file", str(REPO_ROOT / ".env.example")]
    with subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL) as child:
        try:
            wait_until("central_sim on .env.example", _health(port), timeout=30)
        finally:
            child.terminate()
            child.wait(timeout=15)


def _health(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe
