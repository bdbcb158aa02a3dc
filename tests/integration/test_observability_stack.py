"""Observability over the real stack: store API, Celery worker and beat, RabbitMQ, central_sim.

The store's broker traffic goes through a Toxiproxy proxy so the test can cut the broker
without stopping the shared RabbitMQ; central_sim is our own process, stopped and restarted.
"""

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chaos.toxiproxy import ToxiproxyClient
from harness.commands import celery_argv
from harness.processes import Process, free_port
from harness.store import wait_worker_ready
from tests.support.metrics import Scrape, scrape
from tests.support.services import BrokerProxy, require_toxiproxy, toxiproxy_url
from tests.support.stack import Stack, start_stack, wait_for

pytestmark = pytest.mark.integration

# The console script a deployment runs (bin/worker_healthcheck.py is the same from a checkout).
HEALTHCHECK = Path(sys.executable).parent / "store-worker-healthcheck"


def _worker(stack: Stack) -> Process:
    assert stack.worker is not None, "the module's stack runs a worker"
    return stack.worker


def _quiet_worker(env: dict[str, str], log_dir: Path) -> Process:
    """A worker whose output is log lines only (`--quiet`: no banner printed to stdout)."""
    node = f"obs-{uuid.uuid4().hex[:6]}@localhost"
    argv = celery_argv(
        "--quiet", "worker", "--pool=solo", "--without-mingle", "--without-gossip", "-n", node
    )
    process = Process("worker", argv, env=env, log_dir=log_dir).start()
    wait_worker_ready(process)
    return process


@pytest.fixture(scope="module")
def proxy(rabbitmq_url: str) -> Iterator[BrokerProxy]:
    """A Toxiproxy proxy of the module's own in front of RabbitMQ."""
    with ToxiproxyClient(toxiproxy_url()) as client:
        require_toxiproxy(client)
        broker = BrokerProxy.create(client, rabbitmq_url, prefix="store-obs-broker")
        try:
            yield broker
        finally:
            broker.delete()


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory, proxy: BrokerProxy) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("observability")
    worker_port = free_port()
    stack = start_stack(
        tmp,
        proxy.url,
        worker=False,
        STORE_LOG_JSON="true",
        STORE_LOG_LEVEL="DEBUG",
        STORE_WORKER_METRICS_PORT=str(worker_port),
        STORE_WORKER_HEARTBEAT_SECONDS="1",
        STORE_HEALTH_CACHE_SECONDS="0.3",
        STORE_SYNC_INTERVAL_SECONDS="30",
    )
    try:
        # central_sim at INFO, so its log lines (with request ids) can be checked.
        stack.central.process.env["CENTRAL_SIM_LOG_LEVEL"] = "INFO"
        stack.central.restart()
        # The API as deployed (store_service.serve): JSON from its very first line.
        port = urlsplit(stack.api.base_url).port
        stack.api.process.argv = [sys.executable, "-m", "store_service.serve", "--port", str(port)]
        api_log_offset = stack.api.process.log_path.stat().st_size
        stack.api.restart()
        stack.worker = _quiet_worker(stack.env, stack.log_dir)
        beat = Process(
            "beat", celery_argv("--quiet", "beat"), env=stack.env, log_dir=stack.log_dir
        ).start()
        stack.extra.append(beat)
        yield {
            "stack": stack,
            "worker_metrics": f"http://127.0.0.1:{worker_port}/metrics",
            "api_log_offset": api_log_offset,
        }
    finally:
        proxy.client.enable(proxy.name)
        stack.stop()


def _json_lines(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    """Every line as JSON; raises on one that is not (Celery's root warning included)."""
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode()
    return [json.loads(line) for line in text.splitlines()]


def _health(stack: Stack) -> dict[str, Any]:
    response = stack.http.get(f"{stack.api.base_url}/health")
    body = dict(response.json())
    body["http_status"] = response.status_code
    return body


def test_request_id_travels_from_the_trigger_to_the_worker_and_central(obs: dict) -> None:
    stack: Stack = obs["stack"]
    request_id = f"obs-{uuid.uuid4().hex}"
    operation_id = stack.update("SKU-RID", 3)
    response = stack.http.post(
        f"{stack.api.base_url}/v1/local/sync/trigger", headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 202
    stack.wait_settled([operation_id])

    def worker_line() -> dict[str, Any] | None:
        return next(
            (
                line
                for line in _json_lines(_worker(stack).log_path)
                if line.get("request_id") == request_id and line.get("event") == "sync_run_finished"
            ),
            None,
        )

    assert wait_for("the worker's run log line", worker_line, timeout=10)["sent"] >= 1
    central_lines = [
        line
        for line in _json_lines(stack.central.process.log_path)
        if line.get("request_id") == request_id
    ]
    assert any(line.get("event") == "bulk_sync" for line in central_lines), central_lines
    # This is the module stack's first run, so it is also the one that fetched the token.
    assert any(line.get("event") == "token_issued" for line in central_lines), central_lines


def test_worker_metrics_count_a_real_sync_run(obs: dict) -> None:
    stack: Stack = obs["stack"]
    before = scrape(obs["worker_metrics"])
    operation_ids = [stack.update("SKU-WM", delta) for delta in (5, -1, 2, 7, -3)]
    stack.wait_settled(operation_ids)

    def counted_all() -> Scrape | None:
        now = scrape(obs["worker_metrics"])
        applied = now.value("store_sync_items_total", outcome="applied")
        return (
            now
            if applied - before.value("store_sync_items_total", outcome="applied") >= 5
            else None
        )

    after = wait_for("worker metrics", counted_all, timeout=10)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("store_sync_items_total", outcome="applied") == 5
    assert moved("store_sync_runs_total", result="drained") >= 1
    assert moved("store_sync_batch_duration_seconds_count") >= 1
    assert moved("store_sync_run_duration_seconds_count") >= 1
    # The worker keeps its central client (and token) across runs: this run may not have
    # needed a new token, but the process has acquired at least one.
    assert after.value("store_central_tokens_acquired_total") >= 1
    api = scrape(f"{stack.api.base_url}/metrics")
    assert api.value("store_outbox_changes", state="synced") >= 5
    assert api.value("store_sync_last_success_timestamp_seconds") > 0
    assert api.value("store_worker_heartbeat_timestamp_seconds") > 0


def test_central_failures_count_retries_backoff_and_errors_by_kind(obs: dict) -> None:
    stack: Stack = obs["stack"]
    before = scrape(obs["worker_metrics"])
    stack.faults(error_rate=1.0)
    try:
        operation_ids = [stack.update("SKU-ERR", 1), stack.update("SKU-ERR", 2)]
        assert stack.trigger().status_code == 202

        def moved(now: Scrape, name: str, **labels: str) -> float:
            return now.value(name, **labels) - before.value(name, **labels)

        def failed() -> Any:
            # The error is counted at the call; the run's result, its retries and then their
            # backoffs when it ends (store_service.sync.metrics): wait for the last of these,
            # not a scrape taken in between.
            now = scrape(obs["worker_metrics"])
            return now if moved(now, "store_sync_backoff_seconds_count") >= 2 else None

        after = wait_for("two changes backed off", failed, timeout=15)
        assert moved(after, "store_central_errors_total", kind="server_error") >= 1
        assert moved(after, "store_sync_retries_total") >= 2
        assert moved(after, "store_sync_runs_total", result="transient") >= 1
    finally:
        stack.clear_faults()
    stack.wait_settled(operation_ids)


def test_health_degrades_when_broker_or_central_go_and_recovers(
    obs: dict, proxy: BrokerProxy
) -> None:
    stack: Stack = obs["stack"]
    client, name = proxy.client, proxy.name

    def status_is(expected: str, down: str | None = None) -> Any:
        def probe() -> dict[str, Any] | None:
            health = _health(stack)
            if health["status"] != expected:
                return None
            if down is not None and health["components"][down]["status"] != "down":
                return None
            return health

        return wait_for(f"health {expected} ({down or 'all'})", probe, timeout=20, every=0.3)

    healthy = status_is("ok")
    assert healthy["http_status"] == 200
    assert set(healthy["components"]) == {"database", "broker", "central", "worker", "backlog"}
    assert all("latency_ms" in c for c in healthy["components"].values())

    client.disable(name)
    try:
        cut = status_is("degraded", down="broker")
        assert cut["http_status"] == 200  # local-first: updates are still taken
        assert stack.http.get(f"{stack.api.base_url}/health/live").status_code == 200
        assert stack.update("SKU-HEALTH", 1)
    finally:
        client.enable(name)
    status_is("ok")

    stack.central.process.stop()
    try:
        gone = status_is("degraded", down="central")
        assert gone["components"]["broker"]["status"] == "ok"
        ready = stack.http.get(f"{stack.api.base_url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
    finally:
        stack.central.restart()
    status_is("ok")


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HEALTHCHECK), "--timeout", "1.5"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_worker_healthcheck_exits_zero_only_when_this_stores_worker_answers(obs: dict) -> None:
    stack: Stack = obs["stack"]

    def answered() -> subprocess.CompletedProcess[str] | None:
        check = _healthcheck(stack.env)
        return check if check.returncode == 0 else None

    # An earlier test cut the broker: the worker's consumer reconnects with backoff (2 s, 4 s).
    ok = wait_for("this store's worker to answer a ping", answered, timeout=30, every=0.5)
    assert "consume" in ok.stdout
    # The queue as RabbitMQ sees it: this worker is its consumer.
    waiting = r"\d+ message\(s\) waiting on \S+, [1-9]\d* consumer\(s\)"
    assert re.search(waiting, ok.stdout), ok.stdout
    other_queue = _healthcheck({**stack.env, "STORE_SYNC_QUEUE": "store.sync.nobody-here"})
    assert other_queue.returncode == 1
    assert "none consumes queue store.sync.nobody-here" in other_queue.stderr
    closed = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    no_broker = _healthcheck({**stack.env, "STORE_BROKER_URL": closed})
    assert no_broker.returncode == 2
    assert "broker unreachable" in no_broker.stderr


def test_no_secret_or_token_in_any_log_line(obs: dict) -> None:
    """Runs last in the module: every process has logged token fetches, syncs and faults."""
    stack: Stack = obs["stack"]
    # One more token-using path: a refresh (token fetch + authorized GET from the API).
    stack.refresh("SKU-WM")
    central_env = stack.central.process.env
    secrets = {
        "central service secret": stack.env["STORE_CENTRAL_SERVICE_SECRET"],
        "other service secret": stack.central.services["order-service"],
        "admin token": stack.central.admin_token,
        "jwt signing secret": central_env["CENTRAL_SIM_JWT_SECRET"],
        "an issued token": stack.central.token(),
    }
    logs = {
        "store-api": stack.api.process.log_path,
        "worker": _worker(stack).log_path,
        "beat": stack.log_dir / "beat.log",
        "central_sim": stack.central.process.log_path,
    }
    for name, path in logs.items():
        text = path.read_text()
        assert text.strip(), f"{name} logged nothing"
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in the {name} log"
        # Any JWT (ours or central's) starts with the base64 of '{"': none may be logged.
        assert "eyJ" not in text, f"a JWT-looking string in the {name} log"
        assert "Bearer " not in text, f"an Authorization header in the {name} log"
        # The API's log starts with the plain `uvicorn` run start_stack made; from the restart
        # under store_service.serve on, every line must be JSON, as every other process's.
        offset = obs["api_log_offset"] if name == "store-api" else 0
        lines = _json_lines(path, offset)  # raises on any line that is not JSON
        assert all("event" in line and "level" in line for line in lines)
    beat_events = [line["event"] for line in _json_lines(logs["beat"])]
    assert beat_events, "beat logged through structlog"
