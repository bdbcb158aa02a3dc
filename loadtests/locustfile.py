"""Locust profiles for the store API. Only the `locust` process imports this (gevent patching).

Run one headless through the wrapper (it picks the user classes, shape and report paths):

    uv run python -m loadtests run --profile tills --shape steady --users 50 --duration 30s \
        --host http://127.0.0.1:8001

or directly: `LOAD_SHAPE=spike LOAD_USERS=40 LOAD_DURATION=60 uv run locust -f
loadtests/locustfile.py --headless --host http://127.0.0.1:8001 TillUser ReaderUser`.

Users (pick with class names on the command line):
- `TillUser`: sells 1-3 units (negative delta, no version) of Zipf-skewed SKUs.
- `ReceivingUser`: receives 6-48 units (positive delta) of uniformly spread SKUs.
- `ReaderUser`: reads SKUs (Zipf), pages inventory, asks the sync status of recent changes.
- `RetryingUser`: sends each update twice with one operation_id (a lost response); the second
  must be a replay: 200, `Idempotent-Replayed: true`, byte-identical body. Sometimes reuses an
  operation_id with another delta: 422 expected.
- `HotSkuUser`: read-then-update with `version` on a handful of hot SKUs; a 409
  `version-conflict` is the expected outcome of losing the race, counted as a success.

Shape `draining` (steady users) also drains: at the start, and every LOAD_TRIGGER_EVERY seconds
(30), it asks the store to sync (`POST /v1/local/sync/trigger`) and reads `GET
/v1/local/sync/summary` every 2 s; the verdict then requires the changes waiting to sync to
have shrunk to at most LOAD_MAX_BACKLOG_LEFT (0.5) of the largest count seen
(`--max-backlog-left`), i.e. the worker drains while the tills sell.

Environment: LOAD_SHAPE (steady|ramp|spike|soak|draining), LOAD_USERS, LOAD_DURATION (seconds),
LOAD_SKUS (1000), LOAD_ZIPF_S (1.1), LOAD_HOT_SKUS (4), LOAD_SEED_QUANTITY (100000; 0 skips
seeding), LOAD_WAIT_MIN/LOAD_WAIT_MAX (seconds between tasks), LOAD_THRESHOLDS_JSON (where to
write the verdict). Thresholds: --p95-ms/--p99-ms/--max-failure-ratio/--min-requests or
LOAD_P95_MS/LOAD_P99_MS/LOAD_MAX_FAILURE_RATIO/LOAD_MIN_REQUESTS; a broken one exits 1.
"""

import collections
import json
import os
import random
import secrets
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import gevent.pool
from locust import FastHttpUser, LoadTestShape, between, events, task

from loadtests.plans import plan, stage_at
from loadtests.sampling import ZipfSampler, sku_name
from loadtests.thresholds import RunStats, Thresholds, violations

SKUS = int(os.environ.get("LOAD_SKUS", "1000"))
ZIPF_S = float(os.environ.get("LOAD_ZIPF_S", "1.1"))
HOT_SKUS = [f"HOT-{i}" for i in range(int(os.environ.get("LOAD_HOT_SKUS", "4")))]
SEED_QUANTITY = int(os.environ.get("LOAD_SEED_QUANTITY", "100000"))
WAIT = between(
    float(os.environ.get("LOAD_WAIT_MIN", "0.05")), float(os.environ.get("LOAD_WAIT_MAX", "0.3"))
)
RUN_TAG = secrets.token_hex(4)  # operation_ids of this run never collide with an earlier run's
UPDATE = "/v1/local/inventory/{sku}/update"

# Recent operation_ids written by tills, for readers to ask their sync status.
recent_operations: collections.deque[str] = collections.deque(maxlen=1000)


def operation_id(kind: str) -> str:
    return f"{kind}-{RUN_TAG}-{uuid.uuid4().hex}"


# --- seeding ------------------------------------------------------------------------------


def _post_json(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(  # noqa: S310 - the --host the user gave, http(s) only
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@events.test_start.add_listener
def seed_stock(environment: Any, **_kwargs: Any) -> None:
    """Receive stock for every SKU first, so sells do not all end in insufficient stock."""
    if SEED_QUANTITY <= 0 or not environment.host:
        return
    skus = [sku_name(rank) for rank in range(1, SKUS + 1)] + HOT_SKUS
    host = environment.host.rstrip("/")
    pool = gevent.pool.Pool(16)
    statuses = pool.map(
        lambda sku: _post_json(
            host + UPDATE.format(sku=sku),
            {"delta": SEED_QUANTITY, "operation_id": operation_id(f"seed-{sku}")},
        ),
        skus,
    )
    bad = [s for s in statuses if s != 200]
    print(f"seeded {len(skus) - len(bad)}/{len(skus)} SKUs with +{SEED_QUANTITY}", flush=True)
    if bad:
        print(f"seeding answers that were not 200: {collections.Counter(bad)}", flush=True)


# --- draining: sync while selling ---------------------------------------------------------

TRIGGER_EVERY = float(os.environ.get("LOAD_TRIGGER_EVERY", "30"))
queued_samples: list[int] = []  # changes pending or in flight, every 2 s (shape draining)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the --host given
        return json.loads(response.read())


def _watch_drain(host: str) -> None:
    """Trigger a sync now and every TRIGGER_EVERY s; sample the queued count every 2 s."""
    last_trigger = -TRIGGER_EVERY
    elapsed = 0.0
    while True:
        if elapsed - last_trigger >= TRIGGER_EVERY:
            status = _post_json(host + "/v1/local/sync/trigger", {})
            print(f"sync trigger: HTTP {status}", flush=True)
            last_trigger = elapsed
        try:
            counts = _get_json(host + "/v1/local/sync/summary")["counts"]
            queued_samples.append(int(counts.get("pending", 0)) + int(counts.get("in_flight", 0)))
        except (OSError, ValueError, KeyError) as exc:
            print(f"sync summary unreadable: {exc!r}", flush=True)
        gevent.sleep(2.0)
        elapsed += 2.0


@events.test_start.add_listener
def start_drain_watch(environment: Any, **_kwargs: Any) -> None:
    if os.environ.get("LOAD_SHAPE") == "draining" and environment.host:
        gevent.spawn(_watch_drain, environment.host.rstrip("/"))


# --- users --------------------------------------------------------------------------------


class _StoreUser(FastHttpUser):
    abstract = True
    wait_time = WAIT
    sampler = ZipfSampler(SKUS, ZIPF_S)

    def update(self, sku: str, body: dict[str, Any], name: str) -> Any:
        return self.client.post(UPDATE.format(sku=sku), json=body, name=name, catch_response=True)


class TillUser(_StoreUser):
    weight = 6

    @task
    def sell(self) -> None:
        op = operation_id("till")
        with self.update(
            self.sampler.sku(),
            {"delta": -random.randint(1, 3), "operation_id": op},
            "update [till sell]",
        ) as response:
            if response.status_code == 200:
                recent_operations.append(op)
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


# Each user class spells out its own request and success rule: the shapes repeat, the
# expectations (200 vs 422 vs 409) are what each profile is about.
class ReceivingUser(_StoreUser):
    weight = 1

    @task
    def receive(self) -> None:
        sku = sku_name(random.randint(1, SKUS))
        body = {"delta": random.randint(1, 8) * 6, "operation_id": operation_id("recv")}
        with self.update(sku, body, "update [receive]") as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


class ReaderUser(_StoreUser):
    weight = 3

    @task(6)
    def read_item(self) -> None:
        with self.client.get(
            f"/v1/local/inventory/{self.sampler.sku()}", name="read [item]", catch_response=True
        ) as response:
            if response.status_code in (200, 404):  # 404: a SKU this store never saw
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

    @task(1)
    def read_page(self) -> None:
        self.client.get("/v1/local/inventory?limit=50", name="read [page]")

    @task(2)
    def read_status(self) -> None:
        if not recent_operations:
            return
        op = random.choice(recent_operations)
        self.client.get(f"/v1/local/sync/status/{op}", name="read [sync status]")


class RetryingUser(_StoreUser):
    weight = 1

    @task(4)
    def resend_after_lost_response(self) -> None:
        sku = self.sampler.sku()
        body = {"delta": random.choice((-1, 1, 2)), "operation_id": operation_id("retry")}
        with self.update(sku, body, "update [retry first]") as first:
            if first.status_code != 200:
                first.failure(f"HTTP {first.status_code}: {first.text[:200]}")
                return
            first.success()
        with self.update(sku, body, "update [retry replay]") as replay:
            if replay.status_code != 200:
                replay.failure(f"replay HTTP {replay.status_code}: {replay.text[:200]}")
            elif replay.headers.get("Idempotent-Replayed") != "true":
                replay.failure("replay without Idempotent-Replayed: true")
            elif replay.content != first.content:
                replay.failure("replay body differs from the first answer")
            else:
                replay.success()

    @task(1)
    def reuse_with_another_payload(self) -> None:
        sku = self.sampler.sku()
        op = operation_id("reuse")
        with self.update(sku, {"delta": 1, "operation_id": op}, "update [reuse first]") as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return
            r.success()
        with self.update(sku, {"delta": 2, "operation_id": op}, "update [reuse 422]") as r:
            if r.status_code == 422:
                r.success()
            else:
                r.failure(f"expected 422 for a reused operation_id, got {r.status_code}")


class HotSkuUser(_StoreUser):
    weight = 2

    @task
    def read_then_update(self) -> None:
        sku = random.choice(HOT_SKUS)
        version = None
        with self.client.get(
            f"/v1/local/inventory/{sku}", name="read [hot]", catch_response=True
        ) as response:
            if response.status_code == 200:
                version = response.json()["version"]
                response.success()
            elif response.status_code == 404:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")
                return
        body: dict[str, Any] = {
            "delta": random.choice((-1, 1)),
            "operation_id": operation_id("hot"),
        }
        if version is not None:
            body["version"] = version
        with self.update(sku, body, "update [hot versioned]") as response:
            if response.status_code == 200:
                response.success()
            elif response.status_code == 409 and "version-conflict" in response.text:
                response.success()  # lost the race: the expected outcome under contention
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


# --- shape and thresholds -----------------------------------------------------------------


class SelectedShape(LoadTestShape):
    """The shape named by LOAD_SHAPE, peaking at LOAD_USERS for LOAD_DURATION seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = plan(
            os.environ.get("LOAD_SHAPE", "steady"),
            users=int(os.environ.get("LOAD_USERS", "20")),
            duration=float(os.environ.get("LOAD_DURATION", "30")),
        )

    def tick(self) -> tuple[int, float] | None:
        return stage_at(self.stages, self.get_run_time())


# Threshold options: (flag, type, Thresholds field, environment variable, help).
THRESHOLD_OPTIONS: tuple[tuple[str, type, str, str, str], ...] = (
    ("--p95-ms", float, "p95_ms", "LOAD_P95_MS", "fail the run when p95 exceeds this (ms)"),
    ("--p99-ms", float, "p99_ms", "LOAD_P99_MS", "fail the run when p99 exceeds this (ms)"),
    (
        "--max-failure-ratio",
        float,
        "max_failure_ratio",
        "LOAD_MAX_FAILURE_RATIO",
        "fail above this failure ratio",
    ),
    ("--min-requests", int, "min_requests", "LOAD_MIN_REQUESTS", "fail with fewer requests"),
    (
        "--max-backlog-left",
        float,
        "max_backlog_left",
        "LOAD_MAX_BACKLOG_LEFT",
        "shape draining: fail unless the sync backlog ends at most this fraction of its peak",
    ),
)


@events.init_command_line_parser.add_listener
def _threshold_options(parser: Any) -> None:
    default = Thresholds.from_env()
    for flag, kind, field, env_var, help_text in THRESHOLD_OPTIONS:
        parser.add_argument(
            flag, type=kind, default=getattr(default, field), env_var=env_var, help=help_text
        )


@events.quitting.add_listener
def _apply_thresholds(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    limits = Thresholds(
        p95_ms=options.p95_ms,
        p99_ms=options.p99_ms,
        max_failure_ratio=options.max_failure_ratio,
        min_requests=options.min_requests,
        max_backlog_left=options.max_backlog_left,
    )
    total = environment.stats.total
    stats = RunStats(
        requests=total.num_requests,
        failures=total.num_failures,
        p95_ms=total.get_response_time_percentile(0.95) or 0.0,
        p99_ms=total.get_response_time_percentile(0.99) or 0.0,
        backlog_samples=list(queued_samples) if os.environ.get("LOAD_SHAPE") == "draining" else [],
    )
    broken = violations(stats, limits)
    environment.process_exit_code = 1 if broken else 0
    verdict = {
        "passed": not broken,
        "violations": broken,
        "thresholds": limits.as_dict(),
        "stats": {
            "requests": stats.requests,
            "failures": stats.failures,
            "failure_ratio": stats.failure_ratio,
            "p95_ms": stats.p95_ms,
            "p99_ms": stats.p99_ms,
            "rps": total.total_rps,
            "sync_backlog_samples": stats.backlog_samples,
        },
    }
    print("thresholds:", "PASSED" if not broken else "FAILED: " + "; ".join(broken), flush=True)
    if path := os.environ.get("LOAD_THRESHOLDS_JSON"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(verdict, indent=2))
