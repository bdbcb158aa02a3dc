"""Benchmark (d): "sync soon" latency, from a local update's answer to central applying it.

A real central_sim, the store API with `STORE_SYNC_SOON_SECONDS` set, and a Celery worker
(threads pool, as `bin/run_local.py` runs it) fed by a real RabbitMQ. Updates are sent at a
fixed rate (100/s by default: one client, paced by the clock, unique operation_ids over 50
SKUs); each answer's arrival time is recorded. When every change has reached central, the
latency of each is central_sim's journal time for its operation_id minus the moment the store
answered it (one machine, one clock).

    uv run python -m loadtests.bench --only-soon        # or part of the full benchmark
"""

import json
import os
import secrets
import statistics
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from kombu.connection import Connection

from chaos.runner import DEFAULT_BROKER_URL
from harness.broker import delete_queue_quietly
from harness.central import SimAdmin
from harness.commands import celery_argv, uvicorn_argv
from harness.processes import Process, free_port, http_ok, wait_until

SKUS = 50


def broker_available(broker_url: str) -> bool:
    try:
        with Connection(broker_url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def bench_sync_soon(
    workdir: Path, *, broker_url: str, rate: float, seconds: float, debounce: float
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir = workdir / "logs"
    secret = secrets.token_urlsafe(24)
    admin_token = secrets.token_urlsafe(24)
    central_port, api_port = free_port(), free_port()
    central = Process(
        "central_sim",
        uvicorn_argv("central_sim.main:app", central_port),
        env={
            "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{workdir / 'central.db'}",
            "CENTRAL_SIM_JWT_SECRET": secrets.token_urlsafe(48),
            "CENTRAL_SIM_ADMIN_TOKEN": admin_token,
            "CENTRAL_SIM_SERVICES": json.dumps({"inventory-service": secret}),
            "CENTRAL_SIM_SERVICES_FILE": "",
            "CENTRAL_SIM_LOG_LEVEL": "WARNING",
        },
        log_dir=log_dir,
    )
    queue = f"store.sync.bench-{uuid.uuid4().hex[:8]}"
    env = {
        "STORE_DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
        "STORE_DATA_DIR": str(workdir),
        "STORE_MIGRATE_ON_STARTUP": "true",
        "STORE_BROKER_URL": broker_url,
        "STORE_SYNC_QUEUE": queue,
        "STORE_CENTRAL_URL": f"http://127.0.0.1:{central_port}",
        "STORE_CENTRAL_SERVICE_NAME": "inventory-service",
        "STORE_CENTRAL_SERVICE_SECRET": secret,
        "STORE_SYNC_SOON_SECONDS": str(debounce),
        "STORE_ALLOW_NEGATIVE_STOCK": "true",
        "STORE_LOG_LEVEL": "WARNING",
        "STORE_WORKER_METRICS_PORT": "0",
    }
    api = Process(
        "store-api",
        uvicorn_argv("store_service.main:app", api_port),
        env=env,
        log_dir=log_dir,
    )
    node = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    worker_args = ["--quiet", "worker", "--pool=threads", "--concurrency", "1"]
    worker = Process(
        "worker",
        celery_argv(*worker_args, "--without-mingle", "--without-gossip", "-n", node),
        env={**env, "STORE_LOG_LEVEL": "INFO"},  # its "ready" line is how we know it is up
        log_dir=log_dir,
    )
    processes = [central, api, worker]
    try:
        central.start()
        api.start()  # it migrates the database: the worker starts after it answers
        central_url = f"http://127.0.0.1:{central_port}"
        api_url = f"http://127.0.0.1:{api_port}"
        wait_until("central_sim", http_ok(f"{central_url}/health"), timeout=90, process=central)
        api_ready = http_ok(f"{api_url}/v1/local/inventory")
        wait_until("the store API", api_ready, timeout=90, process=api)
        worker.start()
        worker_ready = lambda: "ready" in worker.log_tail(200)  # noqa: E731
        wait_until("the worker", worker_ready, timeout=90, process=worker)
        answered = _send_paced(api_url, rate=rate, seconds=seconds)
        reached = _wait_reached(SimAdmin(central_url, admin_token), set(answered), timeout=120)
    finally:
        for process in reversed(processes):
            process.stop()
        delete_queue_quietly(broker_url, queue)
    latencies = sorted(reached[op] - answered[op] for op in answered if op in reached)
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "debounce_s": debounce,
        "updates": len(answered),
        "reached_central": len(latencies),
        "median_s": statistics.median(latencies),
        "p90_s": latencies[int(len(latencies) * 0.9)],
        "p99_s": latencies[int(len(latencies) * 0.99)],
        "max_s": latencies[-1],
    }


def _send_paced(api_url: str, *, rate: float, seconds: float) -> dict[str, float]:
    """Send `rate` updates a second for `seconds`; returns each operation_id's answer time."""
    answered: dict[str, float] = {}
    interval = 1.0 / rate
    run = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=api_url, timeout=10) as http:
        started = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            op = f"soon-{run}-{n}"
            response = http.post(
                f"/v1/local/inventory/SKU-{n % SKUS + 1:05d}/update",
                json={"delta": 1, "operation_id": op},
            )
            response.raise_for_status()
            answered[op] = time.time()
    return answered


def _wait_reached(sim: SimAdmin, ops: set[str], *, timeout: float) -> dict[str, float]:
    """Central's journal time for every operation_id, once all have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        reached = {
            entry["operation_id"]: datetime.fromisoformat(entry["at"]).timestamp()
            for entry in sim.journal()
            if entry["operation_id"] in ops
        }
        if len(reached) == len(ops) or time.monotonic() > deadline:
            return reached
        time.sleep(0.5)


def default_broker_url() -> str:
    return os.environ.get("STORE_BROKER_URL") or DEFAULT_BROKER_URL
